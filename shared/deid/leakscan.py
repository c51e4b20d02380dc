"""The leak guard's search of an output: which attributes still hold an
original identifying value (see `originals.py` for what counts as a match).

Most outputs hold no original at all, so a header is first checked as a
whole: UIDs and dates by set membership, and the text of every searchable
element joined into one string searched once for every original. Only when
that finds something is the header walked again, element by element, to name
the paths that hold it. Joining cannot hide a hit: each element's text is a
substring of the whole, separated by a newline (not a word character, so a
whole-word match stays a whole-word match). Times, numbers and bulk binary
data are not searched.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from ..dicom.charset import DEFAULT, Charset
from ..dicom.header import Header, Item, charset_in, header_from_dataset
from ..dicom.vocabulary import (
    BINARY_NUMBER_VRS,
    BYTES_VRS,
    PIXEL_TAGS,
    SINGLE_VALUE_VRS,
    STRING_VRS,
)
from .config import DeidConfig
from .originals import IdentifyingValues
from .plan import plan_for
from .table import format_tag
from .values import shift_da

BULK_LIMIT = 4096  # binary values larger than this are data, not text
# Bytes that may be text nobody declared: searched when short.
OPAQUE_VRS = frozenset({"OB", "OW", "UN"})
UNSEARCHED_VRS = BINARY_NUMBER_VRS | {"IS", "DS", "TM"} | (BYTES_VRS - OPAQUE_VRS)
# Codes: compared whole, never searched for the words of a name.
WHOLE_VALUE_VRS = frozenset({"CS", "AS"})


class _Dates:
    """Which dates of an output count as an original: not the shifted value of
    an original date (a shift may land on another original, a newborn's
    study shifted onto the birth date), and not a date in an attribute an
    option keeps in the clear (a newborn imaged on its birth date, with full
    dates kept: the study date shows the birth date by the option's choice)."""

    __slots__ = ("dates", "kept_tags", "shift")

    def __init__(self, originals: IdentifyingValues, shift: int | None,
                 kept_tags: frozenset[int]):
        self.dates, self.shift, self.kept_tags = originals.dates, shift, kept_tags

    def original(self, tag: int, values: list[str]) -> bool:
        if tag in self.kept_tags:
            return False
        for value in values:
            day = value[:8]
            if day in self.dates and not (
                    self.shift and shift_da(day, -self.shift) in self.dates):
                return True
        return False


def find_leaks(header: Header | Dataset, originals: IdentifyingValues, *,
               date_shift_days: int | None = None,
               config: DeidConfig | None = None) -> list[str]:
    """Attribute paths, e.g. "(0040,0275)[0].(0032,1060)", whose value holds
    an original value. Never returns the value itself. `date_shift_days` and
    `config`, of the de-identification that made the output, tell a date it
    moved or kept on purpose from a leaked one (see `_Dates`)."""
    if not len(originals):
        return []
    if isinstance(header, Dataset):
        header = header_from_dataset(header)
    dates = _Dates(originals, date_shift_days,
                   plan_for(config).kept_dates if config is not None else frozenset())
    texts: list[str] = []
    suspect = False
    if header.meta is not None:
        suspect = _gather(header.meta, DEFAULT, originals, dates, texts)
    suspect = _gather(header.body, header.codec, originals, dates, texts) or suspect
    if not suspect and not originals.search("\n".join(texts)):
        return []
    hits: list[str] = []
    if header.meta is not None:
        _scan(header.meta, "", DEFAULT, originals, dates, hits)
    _scan(header.body, "", header.codec, originals, dates, hits)
    return hits


def _gather(item: Item, outer: Charset, originals: IdentifyingValues, dates: _Dates,
            texts: list[str]) -> bool:
    """Collect the searchable text of `item`; True if a UID, date or code is an original."""
    uids = originals.uids
    codec = charset_in(item, outer)
    suspect = False
    for tag, elem in item.items():
        value, vr = elem[1], elem[0]
        if type(value) is list:
            for sub in value:
                suspect = _gather(sub, codec, originals, dates, texts) or suspect
        elif not value or vr in UNSEARCHED_VRS or tag in PIXEL_TAGS:
            continue
        elif vr == "UI":
            suspect = suspect or any(v in uids for v in _values(value, vr, codec))
        elif vr == "DA" or vr == "DT":
            suspect = suspect or dates.original(tag, _values(value, vr, codec))
        elif vr in WHOLE_VALUE_VRS:
            suspect = suspect or _whole_original(_values(value, vr, codec), originals)
        elif vr in OPAQUE_VRS:
            if len(value) <= BULK_LIMIT:
                texts.append(value.decode("latin-1"))
        else:
            texts.append(codec.decode(value))
    return suspect


def _scan(item: Item, prefix: str, outer: Charset, originals: IdentifyingValues,
          dates: _Dates, hits: list[str]) -> None:
    codec = charset_in(item, outer)
    for tag, elem in sorted(item.items()):
        if tag in PIXEL_TAGS:
            continue
        path = prefix + format_tag(tag)
        if type(elem[1]) is list:
            for i, sub in enumerate(elem[1]):
                _scan(sub, f"{path}[{i}].", codec, originals, dates, hits)
        elif _holds_original(tag, elem[0], elem[1], codec, originals, dates):
            hits.append(path)


def _whole_original(values: list[str], originals: IdentifyingValues) -> bool:
    """A code string holds an original only as its whole value (an ID in
    capitals): "HEAD" as the body part is not the patient named Head."""
    return any(v.upper() in originals.texts for v in values)


def _values(value: bytes, vr: str, codec: Charset) -> list[str]:
    text = codec.decode(value)
    parts = [text] if vr in SINGLE_VALUE_VRS or vr not in STRING_VRS else text.split("\\")
    return [p.strip().rstrip("\x00").strip() for p in parts]


def _holds_original(tag: int, vr: str, value: bytes, codec: Charset,
                    originals: IdentifyingValues, dates: _Dates) -> bool:
    if not value or vr in UNSEARCHED_VRS:
        return False
    if vr in OPAQUE_VRS:
        if len(value) > BULK_LIMIT:
            return False
        texts = [value.decode("latin-1").strip().rstrip("\x00")]
    else:
        texts = _values(value, vr, codec)
    if vr == "UI":
        return any(t in originals.uids for t in texts)
    if vr in ("DA", "DT"):
        return dates.original(tag, texts)
    if vr in WHOLE_VALUE_VRS:
        return _whole_original(texts, originals)
    return any(originals.search(t) for t in texts)
