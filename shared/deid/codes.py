"""Codes of local coding schemes, wherever they are.

PS3.15 keeps code sequences, and a code of a standard scheme (DCM, SCT, LN)
names a concept, not a patient. A local scheme's code is the hospital's
own: it may embed an accession number, an MRN, a room or a person. Its value
(Code Value, Long Code Value, URN Code Value) is replaced by a keyed
pseudonym (HMAC with the relay's secret, `Pseudonymizer.code`), the same for
the same code in every series, so that codes still group studies. Its
meaning is free text and is cleaned as such.

Local schemes: a Coding Scheme Designator that starts with "99" (PS3.3
8.2.2) or is "L", and those the site names (RELAY_DEID_LOCAL_CODING_SCHEMES,
or `local_codes: {schemes: [...]}` in the recipe). A recipe keeps a local
scheme's codes as they are with `local_codes: {keep: [...]}`, or every code
with `CodeValue: keep`.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import cache
from typing import Protocol

from ..dicom.charset import Charset
from ..dicom.header import Item, text_values
from ..dicom.vocabulary import STRING_VRS
from .config import DeidConfig
from .pseudonyms import Pseudonymizer

CODE_VALUE, LONG_CODE_VALUE, URN_CODE_VALUE = 0x00080100, 0x00080119, 0x00080120
CODING_SCHEME_DESIGNATOR = 0x00080102
CODE_VALUE_VRS = {CODE_VALUE: "SH", LONG_CODE_VALUE: "UC", URN_CODE_VALUE: "UR"}
LOCAL_PREFIX = "99"
LOCAL_DESIGNATORS = frozenset({"L"})
CODE_STEP = ("code_value", None)


class _Configured(Protocol):
    @property
    def config(self) -> DeidConfig: ...


class Run(Protocol):
    """What a code's action needs of the walk (`actions.Run`)."""

    codec: Charset
    pseudo: Pseudonymizer
    deferred: list[tuple[Item, int, Charset]]
    replaced: set[int]

    @property
    def plan(self) -> _Configured: ...

    def write(self, item: Item, tag: int, vr: str, values: list[str]) -> None: ...


def code_steps() -> dict[int, tuple[str, None]]:
    return dict.fromkeys(CODE_VALUE_VRS, CODE_STEP)


@cache
def local_schemes(config: DeidConfig) -> tuple[frozenset[str], frozenset[str]]:
    """The schemes the configuration names local, and those whose codes it keeps."""
    named = {s.strip().upper() for s in config.local_coding_schemes}
    kept: set[str] = set()
    if config.recipe is not None:
        named |= {s.strip().upper() for s in config.recipe.local_schemes}
        kept = {s.strip().upper() for s in config.recipe.kept_schemes}
    return frozenset(named), frozenset(kept)


def is_local(scheme: str, named: frozenset[str]) -> bool:
    return scheme.startswith(LOCAL_PREFIX) or scheme in LOCAL_DESIGNATORS or scheme in named


def code_value(item: Item, tag: int, run: Run) -> None:
    """A local code's value becomes its pseudonym; any other code value is
    scrubbed of the originals, as free text the table does not list."""
    scheme = _designator(item, run)
    named, kept = local_schemes(run.plan.config)
    elem = item[tag]
    if scheme is None or scheme in kept or not is_local(scheme, named) \
            or elem[0] not in STRING_VRS:
        run.deferred.append((item, tag, run.codec))
        return
    values = text_values(elem, run.codec)
    new = [_pseudonym(run, scheme, value, tag) for value in values]
    if new != values:
        run.write(item, tag, CODE_VALUE_VRS[tag], new)
        run.replaced.add(tag)


def _designator(item: Item, run: Run) -> str | None:
    elem = item.get(CODING_SCHEME_DESIGNATOR)
    if elem is None or elem[0] not in STRING_VRS:
        return None
    values = text_values(elem, run.codec)
    return values[0].strip().upper() if values else None


def _pseudonym(run: Run, scheme: str, value: str, tag: int) -> str:
    if not value:
        return value
    code = run.pseudo.code(scheme, value)
    if tag == URN_CODE_VALUE:  # still a URN: a UUID drawn from the pseudonym
        return f"urn:uuid:{uuid.UUID(bytes=hashlib.sha256(code.encode()).digest()[:16])}"
    return code
