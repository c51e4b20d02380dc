"""What each action of the plan does to one element of a parsed `Header`,
and the walk that applies them.

An action is `action(item, tag, run)`: it puts a new element in the item (or
removes it) and records the tag in the run's audit sets. A kept element is
never touched: its bytes go to the output as they came. Text is decoded only
where an action must read it (UIDs, dates, identity, free text to scrub), in
the character set of the item it is in.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from typing import cast

from pydicom.datadict import private_dictionary_VR
from pydicom.uid import UID_dictionary

from ..dicom.charset import Charset
from ..dicom.header import Elem, Header, Item, charset_in, text_values
from ..dicom.vocabulary import FREE_TEXT_VRS, NUMBER_FORMATS, SPECIFIC_CHARACTER_SET, STRING_VRS
from ..reasons import RelayError
from .originals import IdentifyingValues
from .plan import Plan, Step
from .pseudonyms import Identifiers, Pseudonymizer
from .values import dummy_value, shift_values

UNSET = object()  # not yet resolved (None means: keep)
# VRs of a fixed form, where a kept value that does not have the form may be
# anything (a name in a UID, an ID in a date): checked before it is kept.
FORMED_VRS = frozenset({"UI", "DA", "DT", "TM"})
MAX_LENGTH = {"SH": 16, "AE": 16, "CS": 16, "LO": 64, "PN": 64}
EMPTY = b""


class ProfileError(RelayError, ValueError):
    """The profile asks for text where the file holds a binary value; the
    message is the relay's own fixed words."""

    code = "profile"


class Run:
    """State of one de-identification of a Header: the plan, the identity,
    the charset of the item being walked, the audit sets."""

    def __init__(self, plan: Plan, ids: Identifiers, pseudo: Pseudonymizer, header: Header,
                 known: IdentifyingValues | None = None):
        self.plan = plan
        self.ids = ids
        self.pseudo = pseudo
        self.codec: Charset = header.codec
        self.order = header.encoding.order
        self.actions = handlers_for(plan)
        # What this instance adds to `known`: not a copy of it, which for a
        # series of thousands would hold every instance's UIDs once per instance.
        self.known = known
        self.originals = IdentifyingValues()
        self.deferred: list[tuple[Item, int, Charset]] = []
        self.removed: set[int] = set()
        self.replaced: set[int] = set()
        self.emptied: set[int] = set()
        self.shifted: set[int] = set()
        self.cleaned: set[int] = set()
        self.private_removed = 0
        self.private_kept = 0
        # What a kept UID, date or time must pass to stay (the engine sets
        # `conform.settle_kept`): a value of another form is never kept.
        self.kept_check: Callable[[Item, int, Run], None] | None = None

    def walk(self, item: Item) -> None:
        actions, plan, kept_check = self.actions, self.plan, self.kept_check
        outer = self.codec
        if SPECIFIC_CHARACTER_SET in item:  # an item may set its own (PS3.5 6.1.2.5)
            self.codec = charset_in(item, outer)
        for tag in list(item):
            handler = actions.get(tag, UNSET)
            if handler is UNSET:
                handler = actions[tag] = handler_for(plan.step(tag))
            if handler is not None:
                handler(item, tag, self)
            elif kept_check is not None and item[tag][0] in FORMED_VRS:
                kept_check(item, tag, self)
        if plan.keeps_safe_private:
            drop_unused_creators(item)
        self.codec = outer

    def values(self, item: Item, tag: int) -> tuple[str, list[str]]:
        elem = item[tag]
        if elem[0] in STRING_VRS:
            return elem[0], text_values(elem, self.codec)
        if type(elem[1]) is list:
            return "SQ", []
        if elem[1]:
            raise ProfileError("an action that reads text met a binary value")
        return elem[0], []

    def write(self, item: Item, tag: int, vr: str, values: list[str]) -> None:
        if vr not in STRING_VRS:
            raise ProfileError("text written to a VR that is not text")
        item[tag] = (vr, self.codec.encode(vr, values))

    def collect(self, item: Item, tag: int) -> None:
        """Remember an original value the leak guard must look for."""
        elem = item[tag]
        if tag in self.plan.sequences:
            if type(elem[1]) is list:
                for sub in elem[1]:
                    collect_all(sub, self, self.codec)
        elif tag in self.plan.identifying and elem[0] in STRING_VRS:
            self.originals.add_raw(elem, self.codec, text_values, self.known)

    def new_uid(self, value: str) -> str:
        return value if not value or value in UID_dictionary else self.pseudo.uid(value)

    def scrub_deferred(self) -> None:
        """Free text is scrubbed last, once every original of the instance
        is known (a description comes before the patient's name in a file)."""
        if not len(self.originals) and not (self.known is not None and len(self.known)):
            return
        for item, tag, codec in self.deferred:
            elem = item[tag]
            if elem[0] not in STRING_VRS:
                continue
            values = text_values(elem, codec)
            clean = [self.originals.scrub(v, self.known) for v in values]
            if clean != values:
                item[tag] = (elem[0], codec.encode(elem[0], clean))
                self.cleaned.add(tag)


def collect_all(item: Item, run: Run, outer: Charset) -> None:
    """Originals inside a sequence that is about to go (removed or emptied):
    they may still appear elsewhere, in free text the profile keeps."""
    identifying, codec = run.plan.identifying, charset_in(item, outer)
    for tag, elem in item.items():
        if type(elem[1]) is list:
            for sub in elem[1]:
                collect_all(sub, run, codec)
        elif (tag in identifying or elem[0] == "UI") and elem[0] in STRING_VRS:
            run.originals.add_raw(elem, codec, text_values, run.known)


# -- the actions -------------------------------------------------------------

def remove(item: Item, tag: int, run: Run) -> None:
    run.collect(item, tag)
    del item[tag]
    run.removed.add(tag)


def remove_private(item: Item, tag: int, run: Run) -> None:
    del item[tag]
    run.private_removed += 1


def empty(item: Item, tag: int, run: Run) -> None:
    run.collect(item, tag)
    elem = item[tag]
    item[tag] = (elem[0], [] if type(elem[1]) is list else EMPTY)
    run.emptied.add(tag)


def _structural(item: Item, tag: int, run: Run) -> str | None:
    """A sequence is de-identified at depth and a UID replaced, whatever the
    action says of the element as a whole: None when done so, else the VR."""
    elem = item[tag]
    vr = run.plan.vr(tag) or elem[0]
    if vr == "SQ" or type(elem[1]) is list:
        recurse(item, tag, run)
        return None
    if vr == "UI":
        uid(item, tag, run)
        return None
    return vr


def dummy(item: Item, tag: int, run: Run) -> None:
    vr = _structural(item, tag, run)
    if vr is None:
        return
    elem = item[tag]
    run.collect(item, tag)
    if vr in STRING_VRS:
        run.write(item, tag, elem[0] if elem[0] in STRING_VRS else vr, [str(dummy_value(vr))])
    else:
        item[tag] = (elem[0], _dummy_bytes(vr, run.order))
    run.replaced.add(tag)


def _dummy_bytes(vr: str, order: str) -> bytes:
    value = dummy_value(vr)
    if isinstance(value, bytes):
        return value
    fmt = NUMBER_FORMATS.get(vr)
    return struct.pack(order + fmt, value) if fmt and value != "" else EMPTY


def uid(item: Item, tag: int, run: Run) -> None:
    elem = item[tag]
    if type(elem[1]) is list:  # U* on a sequence: keep it, its UIDs are replaced at depth
        recurse(item, tag, run)
        return
    if elem[0] != "UI":
        return
    values = text_values(elem, run.codec)
    if not values:
        return
    new = [run.new_uid(v) for v in values]
    if new != values:  # well-known UIDs (SOP classes, coding schemes) stay
        run.originals.add_raw(elem, run.codec, text_values, run.known)
        run.write(item, tag, "UI", new)
        run.replaced.add(tag)


def clean(item: Item, tag: int, run: Run) -> None:
    """'C': keep what carries meaning, without what identifies: dates are
    shifted, UIDs replaced, free text scrubbed of the known originals,
    sequences cleaned at depth; anything else is kept."""
    vr = _structural(item, tag, run)
    if vr in ("DA", "DT"):
        shift(item, tag, run)
    elif vr in FREE_TEXT_VRS or vr in ("CS", "AE", "UR"):
        run.deferred.append((item, tag, run.codec))


def shift(item: Item, tag: int, run: Run) -> None:
    elem = item[tag]
    if elem[0] not in ("DA", "DT"):
        return
    values = text_values(elem, run.codec)
    if not values:
        return
    if tag in run.plan.identifying:
        run.originals.add_raw(elem, run.codec, text_values, run.known)
    shifted = shift_values(values, elem[0], run.ids.date_shift_days)
    run.write(item, tag, elem[0], cast("list[str]", shifted))
    run.shifted.add(tag)


def scrub(item: Item, tag: int, run: Run) -> None:
    """Free text the table does not list is kept, minus any original value."""
    run.deferred.append((item, tag, run.codec))


def recurse(item: Item, tag: int, run: Run) -> None:
    value = item[tag][1]
    if type(value) is list:
        for sub in value:
            run.walk(sub)


def identity(item: Item, tag: int, run: Run, field: str) -> None:
    run.collect(item, tag)
    vr = item[tag][0]
    run.write(item, tag, vr if vr in STRING_VRS else (run.plan.vr(tag) or "LO"),
              [getattr(run.ids, field)])
    run.replaced.add(tag)


def accession(item: Item, tag: int, run: Run, fallback) -> None:
    if run.ids.accession_number is None:
        if fallback is not None:
            fallback(item, tag, run)
    else:
        identity(item, tag, run, "accession_number")


def replace(item: Item, tag: int, run: Run, value: str | None) -> None:
    run.collect(item, tag)
    vr = run.plan.vr(tag)
    if vr not in STRING_VRS:
        raise ProfileError("a replacement value for a VR that is not text")
    run.write(item, tag, vr, [value or ""])
    run.replaced.add(tag)


def hash_value(item: Item, tag: int, run: Run) -> None:
    vr, values = run.values(item, tag)
    if vr == "UI":
        uid(item, tag, run)
        return
    run.collect(item, tag)
    length = min(16, MAX_LENGTH.get(vr, 16))
    run.write(item, tag, vr, [run.pseudo.text(v, length) for v in values])
    run.replaced.add(tag)


def private(item: Item, tag: int, run: Run) -> None:
    """Under Retain Safe Private: see `handlers.private`."""
    element = tag & 0xFFFF
    if element < 0x0010:
        remove_private(item, tag, run)
        return
    if element <= 0x00FF:
        return
    creator = item.get((tag & 0xFFFF0000) | (element >> 8))
    written = ""  # as the file spells it: the private dictionary is case-sensitive
    if creator is not None and type(creator[1]) is bytes:
        written = run.codec.decode(creator[1]).rstrip("\x00").strip()
    if (tag >> 16, written.upper(), element & 0xFF) not in run.plan.safe_private:
        remove_private(item, tag, run)
        return
    run.private_kept += 1
    if run.plan.config.shifts_dates:
        elem = item[tag]
        if elem[0] not in ("DA", "DT") and type(elem[1]) is bytes:
            elem = _private_vr(elem, tag, written)
            item[tag] = elem
        if elem[0] in ("DA", "DT"):
            shift(item, tag, run)


def _private_vr(elem: Elem, tag: int, creator: str) -> Elem:
    """An implicit VR file does not say a private element is a date, and an
    explicit one may say it wrongly (LO, UN); the private dictionary decides."""
    try:
        vr = private_dictionary_VR(tag, creator)
    except KeyError:
        return elem
    return (vr, elem[1]) if vr in ("DA", "DT") else elem


def drop_unused_creators(item: Item) -> None:
    creators = [t for t in item if t >> 16 & 1 and 0x10 <= t & 0xFFFF <= 0xFF]
    if not creators:
        return
    used = {(t >> 16, (t & 0xFFFF) >> 8) for t in item if t >> 16 & 1 and t & 0xFFFF > 0xFF}
    for tag in creators:
        if (tag >> 16, tag & 0xFF) not in used:
            del item[tag]


# -- the plan's steps as functions --------------------------------------------

ACTIONS = {f.__name__: f for f in (remove, remove_private, empty, dummy, uid, clean, shift,
                                   scrub, recurse, identity, accession, replace, hash_value,
                                   private)}


def handler_for(step: Step | None):
    """The function for one step of the plan (its argument bound), None to keep."""
    if step is None:
        return None
    name, argument = step
    if name == "identity":
        return partial(identity, field=argument)
    if name == "accession":
        return partial(accession, fallback=handler_for(argument))
    if name == "replace":
        return partial(replace, value=argument)
    return ACTIONS[name]


def handlers_for(plan: Plan) -> dict:
    """The plan's table as functions, built once per plan and extended as
    `Run.walk` meets tags the table does not list."""
    if not plan.handlers:
        plan.handlers.update((tag, handler_for(step)) for tag, step in plan.steps.items())
    return plan.handlers
