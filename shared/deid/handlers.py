"""What each action does to one element, and the single walk that applies them.

A handler is `handler(ds, tag, run)`; it changes `ds` in place and records
the tag in the run's audit sets. Speed comes from not decoding: pydicom
leaves elements raw (bytes) until asked, and a header has about a hundred of
them. Kept and removed elements are never decoded; text that must be read or
replaced is decoded and encoded here directly when the character set is a
simple one (see `rawtext.py`), and through pydicom otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from .originals import IdentifyingValues
from .rawtext import codec_of, read_values, write_values
from .values import TEXT_VRS, dummy_value, empty_value, shift_values

if TYPE_CHECKING:
    from .identifiers import Identifiers, Pseudonymizer
    from .plan import Plan

UNSET: Any = object()  # not yet resolved (None means: keep)
MAX_LENGTH = {"SH": 16, "AE": 16, "CS": 16, "LO": 64, "PN": 64}


class Run:
    """State of one deidentify() call: the plan, the identity, the audit sets."""

    def __init__(self, plan: Plan, ids: Identifiers, pseudo: Pseudonymizer,
                 known: IdentifyingValues | None = None):
        self.plan = plan
        self.ids = ids
        self.pseudo = pseudo
        self.actions = plan.actions
        self.codec: str | None = None
        self.known = known  # not copied: see rawengine.RawRun
        self.originals = IdentifyingValues()
        self.deferred: list[tuple[Dataset, int, str | None]] = []
        self.removed: set[int] = set()
        self.replaced: set[int] = set()
        self.emptied: set[int] = set()
        self.shifted: set[int] = set()
        self.cleaned: set[int] = set()
        self.private_removed = 0
        self.private_kept = 0

    def walk(self, ds: Dataset) -> None:
        actions, resolve = self.actions, self.plan.resolve
        outer, self.codec = self.codec, codec_of(ds)
        for tag in list(ds.keys()):
            handler = actions.get(tag, UNSET)
            if handler is UNSET:
                handler = resolve(tag)
            if handler is not None:
                handler(ds, tag, self)
        if self.plan.keeps_safe_private:
            drop_unused_creators(ds)
        self.codec = outer

    def values(self, ds: Dataset, tag: int) -> tuple[str, list[str]]:
        return read_values(ds, tag, self.codec, self.plan.vr(tag))

    def write(self, ds: Dataset, tag: int, vr: str, values: list[str]) -> None:
        write_values(ds, tag, vr, values, self.codec)

    def collect(self, ds: Dataset, tag: int) -> None:
        """Remember an original value the leak guard must look for."""
        if tag in self.plan.sequences:
            for item in ds[tag].value or ():
                collect_all(item, self)
        elif tag in self.plan.identifying:
            self.originals.add(*self.values(ds, tag))

    def new_uid(self, value: str) -> str:
        return value if not value or value in UID_dictionary else self.pseudo.uid(value)

    def scrub_deferred(self) -> None:
        """Free text is scrubbed last, once every original of the instance
        is known (a description comes before the patient's name in a file)."""
        if not len(self.originals) and not (self.known is not None and len(self.known)):
            return
        for ds, tag, codec in self.deferred:
            vr, values = read_values(ds, tag, codec, self.plan.vr(tag))
            clean = [self.originals.scrub(v, self.known) for v in values]
            if clean != values:
                write_values(ds, tag, vr, clean, codec)
                self.cleaned.add(tag)


def collect_all(ds: Dataset, run: Run) -> None:
    """Originals inside a sequence that is about to go (removed or emptied):
    they may still appear elsewhere, in free text the profile keeps."""
    codec = codec_of(ds)
    for tag in list(ds.keys()):
        known_vr = run.plan.vr(tag)
        raw_vr = getattr(ds.get_item(tag), "VR", None) or known_vr
        if raw_vr == "SQ" or (raw_vr is None and tag in run.plan.sequences):
            for item in ds[tag].value or ():
                collect_all(item, run)
        elif tag in run.plan.identifying or raw_vr == "UI":
            run.originals.add(*read_values(ds, tag, codec, known_vr))


def remove(ds: Dataset, tag: int, run: Run) -> None:
    run.collect(ds, tag)
    del ds[tag]
    run.removed.add(tag)


def remove_private(ds: Dataset, tag: int, run: Run) -> None:
    del ds[tag]
    run.private_removed += 1


def empty(ds: Dataset, tag: int, run: Run) -> None:
    run.collect(ds, tag)
    vr = run.plan.vr(tag)
    if vr == "SQ" or vr is None or vr not in TEXT_VRS | _STRING_VRS:
        elem = ds[tag]
        elem.value = empty_value(elem.VR)
    else:
        run.write(ds, tag, vr, [])
    run.emptied.add(tag)


def dummy(ds: Dataset, tag: int, run: Run) -> None:
    vr = run.plan.vr(tag) or ds[tag].VR
    if vr == "SQ":  # a dummy sequence: the same items, de-identified at depth
        recurse(ds, tag, run)
        return
    if vr == "UI":
        uid(ds, tag, run)
        return
    run.collect(ds, tag)
    if vr in TEXT_VRS or vr in _STRING_VRS:
        run.write(ds, tag, vr, [str(dummy_value(vr))])
    else:
        ds[tag].value = dummy_value(vr)
    run.replaced.add(tag)


def uid(ds: Dataset, tag: int, run: Run) -> None:
    vr, values = run.values(ds, tag)
    if vr == "SQ":  # U* on a sequence: keep it, its UIDs are replaced at depth
        recurse(ds, tag, run)
        return
    if vr != "UI" or not values:
        return
    new = [run.new_uid(v) for v in values]
    if new != values:  # well-known UIDs (SOP classes, coding schemes) stay
        run.originals.add("UI", values)
        run.write(ds, tag, vr, new)
        run.replaced.add(tag)


def clean(ds: Dataset, tag: int, run: Run) -> None:
    """'C': keep what carries meaning, without what identifies: dates are
    shifted, UIDs replaced, free text scrubbed of the known originals,
    sequences cleaned at depth; anything else is kept."""
    vr = run.plan.vr(tag) or ds[tag].VR
    if vr == "SQ":
        recurse(ds, tag, run)
    elif vr in ("DA", "DT"):
        shift(ds, tag, run)
    elif vr == "UI":
        uid(ds, tag, run)
    elif vr in TEXT_VRS or vr in ("CS", "AE", "UR"):
        run.deferred.append((ds, tag, run.codec))


def shift(ds: Dataset, tag: int, run: Run) -> None:
    """Dates move by the patient's shift (the same for all their studies, so
    intervals hold); times stay, a whole-day shift does not change them."""
    vr, values = run.values(ds, tag)
    if vr not in ("DA", "DT") or not values:
        return
    if tag in run.plan.identifying:
        run.originals.add(vr, values)
    run.write(ds, tag, vr, cast("list[str]", shift_values(values, vr, run.ids.date_shift_days)))
    run.shifted.add(tag)


def scrub(ds: Dataset, tag: int, run: Run) -> None:
    """Free text the table does not list is kept, minus any original value."""
    run.deferred.append((ds, tag, run.codec))


def recurse(ds: Dataset, tag: int, run: Run) -> None:
    for item in ds[tag].value or ():
        run.walk(item)


def identity(ds: Dataset, tag: int, run: Run, field: str) -> None:
    run.collect(ds, tag)
    run.write(ds, tag, run.plan.vr(tag) or "LO", [getattr(run.ids, field)])
    run.replaced.add(tag)


def accession(ds: Dataset, tag: int, run: Run, fallback) -> None:
    if run.ids.accession_number is None:
        fallback(ds, tag, run)
    else:
        identity(ds, tag, run, "accession_number")


def replace(ds: Dataset, tag: int, run: Run, value: str | None) -> None:
    run.collect(ds, tag)
    vr = run.plan.vr(tag)
    if vr in TEXT_VRS or vr in _STRING_VRS:
        run.write(ds, tag, vr, [value or ""])
    else:
        ds[tag].value = value
    run.replaced.add(tag)


def hash_value(ds: Dataset, tag: int, run: Run) -> None:
    vr, values = run.values(ds, tag)
    if vr == "UI":
        uid(ds, tag, run)
        return
    run.collect(ds, tag)
    length = min(16, MAX_LENGTH.get(vr, 16))
    run.write(ds, tag, vr, [run.pseudo.text(v, length) for v in values])
    run.replaced.add(tag)


def private(ds: Dataset, tag: int, run: Run) -> None:
    """Under Retain Safe Private: creators stay for now (see
    drop_unused_creators); an element stays only if its creator, group and
    offset are on the safe list, with its dates shifted like public ones."""
    element = tag & 0xFFFF
    if element < 0x0010:
        remove_private(ds, tag, run)
        return
    if element <= 0x00FF:
        return
    creator = ds.get((tag & 0xFFFF0000) | (element >> 8))
    name = str(creator.value).strip().upper() if creator is not None else ""
    if (tag >> 16, name, element & 0xFF) not in run.plan.safe_private:
        remove_private(ds, tag, run)
        return
    run.private_kept += 1
    if run.plan.config.shifts_dates and ds[tag].VR in ("DA", "DT"):
        shift(ds, tag, run)


def drop_unused_creators(ds: Dataset) -> None:
    creators = [t for t in ds.keys() if t >> 16 & 1 and 0x10 <= t & 0xFFFF <= 0xFF]  # noqa: SIM118 (a Dataset iterates elements)
    if not creators:
        return
    used = {(t >> 16, (t & 0xFFFF) >> 8) for t in ds.keys() if t >> 16 & 1 and t & 0xFFFF > 0xFF}  # noqa: SIM118 (a Dataset iterates elements)
    for tag in creators:
        if (tag >> 16, tag & 0xFF) not in used:
            del ds[tag]


_STRING_VRS = frozenset({"UI", "DA", "DT", "TM", "CS", "AE", "AS", "DS", "IS", "UR"})
