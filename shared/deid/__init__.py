"""De-identification of DICOM headers: the PS3.15 Annex E profile with its
options, an operator recipe, keyed pseudonyms, provenance, an audit record,
and the leak guard that checks the result.

Pure except `streamcopy`, the one module that reads and writes files. One
engine, over the byte layer `relay_shared.dicom`: `streamcopy.load_header`
gives a `Header` (parsed without pydicom's element objects), `deidentify`
applies the plan's actions to it, `find_leaks` searches the output. A caller
holding a pydicom Dataset may pass it: it is converted to a Header once, at
the edge.
"""

from ..dicom.header import Header
from .config import DeidConfig
from .engine import DeidResult, deidentify, identifying_values
from .leakscan import find_leaks
from .originals import IdentifyingValues
from .provenance import merge_audits
from .pseudonyms import Identifiers, Pseudonymizer
from .recipe import DeidConfigError, Recipe, SafePrivate, load_recipe, parse_recipe
from .table import OPTIONS

__all__ = [
    "OPTIONS",
    "DeidConfig",
    "DeidConfigError",
    "DeidResult",
    "Header",
    "Identifiers",
    "IdentifyingValues",
    "Pseudonymizer",
    "Recipe",
    "SafePrivate",
    "deidentify",
    "find_leaks",
    "identifying_values",
    "load_recipe",
    "merge_audits",
    "parse_recipe",
]
