"""De-identification of DICOM headers: the PS3.15 Annex E profile with its
options, an operator recipe, keyed pseudonyms, provenance, an audit record,
and the leak guard that checks the result.

Pure except `streamcopy`, the one module that reads and writes files. The
fast path takes a file's header as bytes (`streamcopy.read_header` gives a
`Header`, parsed without pydicom's element objects); a pydicom Dataset is
accepted everywhere too.
"""

from .config import DeidConfig
from .engine import DeidResult, deidentify, identifying_values
from .header import Header
from .identifiers import Identifiers, Pseudonymizer
from .originals import IdentifyingValues, find_leaks
from .provenance import merge_audits
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
