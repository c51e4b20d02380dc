"""What each action does to one element, and the single walk that applies them.

A handler is `handler(ds, tag, run)`; it changes `ds` in place and records
the tag in the run's audit sets. Handlers fetch an element only when they
need its value, so kept and removed elements are never decoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from .originals import IdentifyingValues
from .values import TEXT_VRS, dummy_value, empty_value, shift_values

if TYPE_CHECKING:
    from .identifiers import Identifiers, Pseudonymizer
    from .plan import Plan

UNSET = object()
MAX_LENGTH = {"SH": 16, "AE": 16, "CS": 16, "LO": 64, "PN": 64}
SCRUBBED = "***"


class Run:
    """State of one deidentify() call: the plan, the identity, the audit sets."""

    def __init__(self, plan: Plan, ids: Identifiers, pseudo: Pseudonymizer,
                 known: IdentifyingValues | None = None):
        self.plan = plan
        self.ids = ids
        self.pseudo = pseudo
        self.actions = plan.actions
        self.originals = IdentifyingValues()
        if known is not None:
            self.originals.update(known)
        self.deferred: list = []
        self.removed: set[int] = set()
        self.replaced: set[int] = set()
        self.emptied: set[int] = set()
        self.shifted: set[int] = set()
        self.cleaned: set[int] = set()
        self.private_removed = 0
        self.private_kept = 0

    def walk(self, ds: Dataset) -> None:
        actions, resolve = self.actions, self.plan.resolve
        for tag in list(ds.keys()):
            handler = actions.get(tag, UNSET)
            if handler is UNSET:
                handler = resolve(tag)
            if handler is not None:
                handler(ds, tag, self)
        if self.plan.keeps_safe_private:
            drop_unused_creators(ds)

    def collect(self, ds: Dataset, tag: int) -> None:
        """Remember an original value the leak guard must look for."""
        if tag in self.plan.identifying:
            elem = ds[tag]
            if elem.VR == "SQ":
                for item in elem.value or ():
                    collect_all(item, self)
            else:
                self.originals.add(elem.VR, elem.value)
        elif tag in self.plan.sequences:
            for item in ds[tag].value or ():
                collect_all(item, self)

    def new_uid(self, value: object) -> object:
        if isinstance(value, str):
            return value if value in UID_dictionary or not value else self.pseudo.uid(value)
        return [self.new_uid(v) for v in value]

    def scrub_deferred(self) -> None:
        pattern = self.originals.pattern()
        if pattern is None:
            return
        for tag, elem in self.deferred:
            value = elem.value
            if isinstance(value, (str, bytes)) or value is None:
                new = pattern.sub(SCRUBBED, str(value)) if value else value
            else:
                new = [pattern.sub(SCRUBBED, str(v)) for v in value]
            if new != value and new != [str(v) for v in value or ()]:
                elem.value = new
                self.cleaned.add(tag)


def collect_all(ds: Dataset, run: Run) -> None:
    """Originals inside a sequence that is about to go (removed or emptied):
    they may still appear elsewhere, in free text the profile keeps."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                collect_all(item, run)
        elif elem.tag in run.plan.identifying or elem.VR == "UI":
            run.originals.add(elem.VR, elem.value)


def remove(ds: Dataset, tag: int, run: Run) -> None:
    run.collect(ds, tag)
    del ds[tag]
    run.removed.add(tag)


def remove_private(ds: Dataset, tag: int, run: Run) -> None:
    del ds[tag]
    run.private_removed += 1


def empty(ds: Dataset, tag: int, run: Run) -> None:
    run.collect(ds, tag)
    elem = ds[tag]
    elem.value = empty_value(elem.VR)
    run.emptied.add(tag)


def dummy(ds: Dataset, tag: int, run: Run) -> None:
    elem = ds[tag]
    if elem.VR == "SQ":  # a dummy sequence: the same items, de-identified at depth
        recurse(ds, tag, run)
        return
    run.collect(ds, tag)
    if elem.VR == "UI":
        elem.value = run.new_uid(elem.value)
    else:
        elem.value = dummy_value(elem.VR)
    run.replaced.add(tag)


def uid(ds: Dataset, tag: int, run: Run) -> None:
    elem = ds[tag]
    if elem.VR == "SQ":  # U* on a sequence: keep it, its UIDs are replaced at depth
        recurse(ds, tag, run)
        return
    if elem.VR != "UI" or not elem.value:
        return
    new = run.new_uid(elem.value)
    if new != elem.value:  # well-known UIDs (SOP classes, coding schemes) stay
        run.originals.add("UI", elem.value)
        elem.value = new
        run.replaced.add(tag)


def clean(ds: Dataset, tag: int, run: Run) -> None:
    """'C': keep what carries meaning, without what identifies: dates are
    shifted, UIDs replaced, free text scrubbed of the known originals,
    sequences cleaned at depth; anything else is kept."""
    elem = ds[tag]
    vr = elem.VR
    if vr == "SQ":
        recurse(ds, tag, run)
    elif vr in ("DA", "DT"):
        shift(ds, tag, run)
    elif vr == "UI":
        uid(ds, tag, run)
    elif vr in TEXT_VRS or vr in ("CS", "AE", "UR"):
        run.deferred.append((tag, elem))


def shift(ds: Dataset, tag: int, run: Run) -> None:
    """Dates move by the patient's shift (the same for all their studies, so
    intervals hold); times stay, a whole-day shift does not change them."""
    elem = ds[tag]
    if elem.VR not in ("DA", "DT") or not elem.value:
        return
    run.collect(ds, tag)
    elem.value = shift_values(elem.value, elem.VR, run.ids.date_shift_days)
    run.shifted.add(tag)


def scrub(ds: Dataset, tag: int, run: Run) -> None:
    """Free text the table does not list is kept, minus any original value."""
    run.deferred.append((tag, ds[tag]))


def recurse(ds: Dataset, tag: int, run: Run) -> None:
    for item in ds[tag].value or ():
        run.walk(item)


def identity(ds: Dataset, tag: int, run: Run, field: str) -> None:
    run.collect(ds, tag)
    ds[tag].value = getattr(run.ids, field)
    run.replaced.add(tag)


def accession(ds: Dataset, tag: int, run: Run, fallback) -> None:
    if run.ids.accession_number is None:
        fallback(ds, tag, run)
    else:
        identity(ds, tag, run, "accession_number")


def replace(ds: Dataset, tag: int, run: Run, value: str | None) -> None:
    run.collect(ds, tag)
    ds[tag].value = value
    run.replaced.add(tag)


def hash_value(ds: Dataset, tag: int, run: Run) -> None:
    elem = ds[tag]
    if elem.VR == "UI":
        uid(ds, tag, run)
        return
    run.collect(ds, tag)
    length = MAX_LENGTH.get(elem.VR, 16)
    if isinstance(elem.value, (str, bytes)) or elem.value is None:
        elem.value = run.pseudo.text(str(elem.value or ""), min(16, length))
    else:
        elem.value = [run.pseudo.text(str(v), min(16, length)) for v in elem.value]
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
    creator_tag = (tag & 0xFFFF0000) | (element >> 8)
    creator = ds.get(creator_tag)
    name = str(creator.value).strip().upper() if creator is not None else ""
    if (tag >> 16, name, element & 0xFF) not in run.plan.safe_private:
        remove_private(ds, tag, run)
        return
    run.private_kept += 1
    if run.plan.config.shifts_dates and ds[tag].VR in ("DA", "DT"):
        shift(ds, tag, run)


def drop_unused_creators(ds: Dataset) -> None:
    creators = [t for t in ds.keys() if t >> 16 & 1 and 0x10 <= t & 0xFFFF <= 0xFF]
    if not creators:
        return
    used = {(t >> 16, (t & 0xFFFF) >> 8) for t in ds.keys() if t >> 16 & 1 and t & 0xFFFF > 0xFF}
    for tag in creators:
        if (tag >> 16, tag & 0xFF) not in used:
            del ds[tag]
