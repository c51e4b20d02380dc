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
from ..dicom.header import Header, Item, charset_in, text_values
from ..dicom.vocabulary import FREE_TEXT_VRS, NUMBER_FORMATS, SPECIFIC_CHARACTER_SET, STRING_VRS
from ..reasons import RelayError
from .codes import code_value
from .detectors import detector_for
from .forms import CHECKED_VRS, DEFINED_TERMS, parses
from .originals import IdentifyingValues
from .plan import Plan, Step
from .pseudonyms import Identifiers, Pseudonymizer
from .structured import dummy_content
from .text import fold
from .values import dummy_value, shift_values

UNSET = object()  # not yet resolved (None means: keep)
# Code strings: checked against the instance's originals once all are known.
CODE_VRS = frozenset({"CS"})
# What the pixel data cannot be read without (PS3.3 C.7.6.3): a value of
# these that is not of its VR cannot be replaced by a dummy (the pixels would
# be misdescribed) nor removed (the image would be no image).
PIXEL_DESCRIPTION = frozenset({0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010,
                               0x00280011, 0x00280100, 0x00280101, 0x00280102, 0x00280103})
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
        # What a kept value of a formed VR (`forms.CHECKED_VRS`: UIDs, dates,
        # times, code strings, numbers, binary values) must pass to stay (the
        # engine sets `conform.settle_kept`): a value of another form may be
        # anything (a name in a UID, an ID in a slice thickness) and is never kept.
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
            elif kept_check is not None and item[tag][0] in CHECKED_VRS:
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

    def _code(self, tag: int, vr: str, value: str) -> str:
        """A code string that holds an original is replaced by the dummy as a
        whole (`***` is no code string). One word that is one name component
        is a coincidence the guard does not count either (Body Part Examined
        HEAD of a patient named Head) and stays, unless the attribute's terms
        are listed and it is none of them (Modality JANET); two words of a
        name (`JANET DOE`), an ID or any other whole original do not."""
        if not self.originals.search(value, self.known):
            return value
        word = fold(value).strip()
        components = self.originals.words | self.originals.short_words
        if self.known is not None:
            components = components | self.known.words | self.known.short_words
        terms = DEFINED_TERMS.get(tag)
        if word in components and not (word in self.originals.texts
                                       or (self.known is not None and word in self.known.texts)
                                       or (terms is not None and value.strip() not in terms)):
            return value
        if tag in PIXEL_DESCRIPTION:
            raise ProfileError("a value that describes the pixel data holds an identifier")
        return str(dummy_value(vr))

    def new_uid(self, value: str) -> str:
        return value if not value or value in UID_dictionary else self.pseudo.uid(value)

    def scrub_deferred(self) -> None:
        """Free text is scrubbed last, once every original of the instance
        is known (a description comes before the patient's name in a file),
        of the originals and of what the detectors find."""
        none_known = not len(self.originals) and not (self.known is not None and len(self.known))
        for item, tag, codec in self.deferred:
            elem = item.get(tag)
            if elem is None:
                continue
            detect = detector_for(tag, elem[0], self.plan.config.keeps_dates)
            if elem[0] not in STRING_VRS or (none_known and detect is None):
                continue
            values = text_values(elem, codec)
            if elem[0] in CODE_VRS:
                clean = [self._code(tag, elem[0], v) for v in values]
            else:
                clean = [self.originals.scrub(v, self.known, detect) for v in values]
            if clean != values:
                item[tag] = (elem[0], codec.encode(elem[0], clean))
                self.cleaned.add(tag)


def defer_code(item: Item, tag: int, run: Run) -> None:
    """A code string kept (or cleaned) is looked at with the free text, once
    every original of the instance is known (see `Run._code`)."""
    run.deferred.append((item, tag, run.codec))


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
    if vr == "PN" and elem[0] in STRING_VRS:  # a name the table does not list: see plan._by_vr
        run.originals.add_raw(elem, run.codec, text_values, run.known)
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
    elif vr in FREE_TEXT_VRS or vr in ("AE", "UR"):
        run.deferred.append((item, tag, run.codec))
    elif vr is not None and run.kept_check is not None and item[tag][0] in CHECKED_VRS:
        # Cleaning a time, a number or a code string keeps it: it must have
        # its VR's form like any kept value (a StudyTime under
        # rtnLongModifDatesOpt holding a name is not a time); a code string
        # is then looked at with the free text.
        run.kept_check(item, tag, run)


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
    elem = item[tag]
    if type(elem[1]) is bytes:
        # The private dictionary says what the element is, as the data
        # dictionary does for public ones: an implicit VR file does not say
        # it, an explicit one may say it wrongly (a date as LO, a number as
        # UN). A value not of that VR (or, for an element the private
        # dictionary does not know, not of the formed VR the file wrote) is
        # removed: the safe list vouches for what the element means, not
        # for whatever a file put in it.
        vr = _private_vr(tag, written) or elem[0]
        if (vr in CHECKED_VRS or " or " in vr) and not parses(vr, elem[1], run.codec,
                                                               written=elem[0]):
            remove_private(item, tag, run)
            return
        if vr != elem[0] and " or " not in vr:
            elem = item[tag] = (vr, elem[1])
        if elem[0] in ("DA", "DT") and run.plan.config.shifts_dates:
            shift(item, tag, run)
        elif elem[0] in FREE_TEXT_VRS or elem[0] in CODE_VRS:
            run.deferred.append((item, tag, run.codec))  # scrubbed like public text
    run.private_kept += 1


def _private_vr(tag: int, creator: str) -> str | None:
    try:
        return str(private_dictionary_VR(tag, creator))
    except KeyError:
        return None


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
                                   private, dummy_content, code_value)}


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
