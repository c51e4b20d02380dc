"""The profile applied to a parsed `Header`: the same plan, the same actions
as `handlers.py`, on element bytes instead of pydicom elements.

Each action of the plan has its twin here, found through `RAW` (the plan's
table is translated once per configuration and cached on the plan). A kept
element is never touched: its bytes go to the output as they came. Text is
decoded only where an action must read it (UIDs, dates, identity, free text
to scrub). Anything out of the ordinary raises `Unsupported`, and the caller
de-identifies through pydicom instead.
"""

from __future__ import annotations

import struct
from functools import partial
from typing import TYPE_CHECKING, cast

from pydicom.datadict import private_dictionary_VR
from pydicom.uid import UID_dictionary

from . import handlers as h
from .header import TEXTUAL_VRS, Elem, Header, Item, Unsupported, text_bytes, text_values
from .originals import IdentifyingValues
from .values import TEXT_VRS, dummy_value, shift_values

if TYPE_CHECKING:
    from .identifiers import Identifiers, Pseudonymizer
    from .plan import Plan

UNSET = h.UNSET
STRING_VRS = frozenset({"UI", "DA", "DT", "TM", "CS", "AE", "AS", "DS", "IS", "UR"})
WRITABLE = TEXT_VRS | STRING_VRS
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d",
                  "UV": "Q", "SV": "q"}
EMPTY = b""


class RawRun:
    """State of one de-identification of a Header: the twin of `handlers.Run`
    (same audit sets, so `provenance.audit_record` reads either)."""

    def __init__(self, plan: Plan, ids: Identifiers, pseudo: Pseudonymizer, header: Header,
                 known: IdentifyingValues | None = None):
        self.plan = plan
        self.ids = ids
        self.pseudo = pseudo
        self.codec = header.codec
        self.order = header.encoding.order
        self.actions = raw_actions(plan)
        # What this instance adds to `known`: not a copy of it, which for a
        # series of thousands would hold every instance's UIDs once per instance.
        self.known = known
        self.originals = IdentifyingValues()
        self.deferred: list[tuple[Item, int]] = []
        self.removed: set[int] = set()
        self.replaced: set[int] = set()
        self.emptied: set[int] = set()
        self.shifted: set[int] = set()
        self.cleaned: set[int] = set()
        self.private_removed = 0
        self.private_kept = 0

    def walk(self, item: Item) -> None:
        actions, plan = self.actions, self.plan
        for tag in list(item):
            handler = actions.get(tag, UNSET)
            if handler is UNSET:
                handler = resolve(plan, actions, tag)
            if handler is not None:
                handler(item, tag, self)
        if plan.keeps_safe_private:
            drop_unused_creators(item)

    def values(self, item: Item, tag: int) -> tuple[str, list[str]]:
        elem = item[tag]
        if elem[0] in TEXTUAL_VRS:
            return elem[0], text_values(elem, self.codec)
        if type(elem[1]) is list:
            return "SQ", []
        return elem[0], ([] if not elem[1] else _not_text())

    def write(self, item: Item, tag: int, vr: str, values: list[str]) -> None:
        if vr not in TEXTUAL_VRS:
            raise Unsupported("text written to a VR that is not text")
        item[tag] = (vr, text_bytes(vr, values, self.codec))

    def collect(self, item: Item, tag: int) -> None:
        """Remember an original value the leak guard must look for."""
        elem = item[tag]
        if tag in self.plan.sequences:
            if type(elem[1]) is list:
                for sub in elem[1]:
                    collect_all(sub, self)
        elif tag in self.plan.identifying and elem[0] in TEXTUAL_VRS:
            self.originals.add_raw(elem, self.codec, text_values, self.known)

    def new_uid(self, value: str) -> str:
        return value if not value or value in UID_dictionary else self.pseudo.uid(value)

    def scrub_deferred(self) -> None:
        """Free text is scrubbed last, once every original of the instance is known."""
        if not len(self.originals) and not (self.known is not None and len(self.known)):
            return
        for item, tag in self.deferred:
            elem = item[tag]
            if elem[0] not in TEXTUAL_VRS:
                continue
            values = text_values(elem, self.codec)
            clean = [self.originals.scrub(v, self.known) for v in values]
            if clean != values:
                self.write(item, tag, elem[0], clean)
                self.cleaned.add(tag)


def _not_text() -> list[str]:
    raise Unsupported("an action that reads text met a binary value")


def collect_all(item: Item, run: RawRun) -> None:
    """Originals inside a sequence that is about to go."""
    identifying, codec = run.plan.identifying, run.codec
    for tag, elem in item.items():
        if type(elem[1]) is list:
            for sub in elem[1]:
                collect_all(sub, run)
        elif (tag in identifying or elem[0] == "UI") and elem[0] in TEXTUAL_VRS:
            run.originals.add_raw(elem, codec, text_values, run.known)


# -- the actions -------------------------------------------------------------

def remove(item: Item, tag: int, run: RawRun) -> None:
    run.collect(item, tag)
    del item[tag]
    run.removed.add(tag)


def remove_private(item: Item, tag: int, run: RawRun) -> None:
    del item[tag]
    run.private_removed += 1


def empty(item: Item, tag: int, run: RawRun) -> None:
    run.collect(item, tag)
    elem = item[tag]
    item[tag] = (elem[0], [] if type(elem[1]) is list else EMPTY)
    run.emptied.add(tag)


def dummy(item: Item, tag: int, run: RawRun) -> None:
    elem = item[tag]
    vr = run.plan.vr(tag) or elem[0]
    if vr == "SQ" or type(elem[1]) is list:
        recurse(item, tag, run)
        return
    if vr == "UI":
        uid(item, tag, run)
        return
    run.collect(item, tag)
    if vr in WRITABLE:
        run.write(item, tag, elem[0] if elem[0] in TEXTUAL_VRS else vr, [str(dummy_value(vr))])
    else:
        item[tag] = (elem[0], _dummy_bytes(vr, run.order))
    run.replaced.add(tag)


def _dummy_bytes(vr: str, order: str) -> bytes:
    value = dummy_value(vr)
    if isinstance(value, bytes):
        return value
    fmt = NUMBER_FORMATS.get(vr)
    return struct.pack(order + fmt, value) if fmt and value != "" else EMPTY


def uid(item: Item, tag: int, run: RawRun) -> None:
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


def clean(item: Item, tag: int, run: RawRun) -> None:
    elem = item[tag]
    vr = run.plan.vr(tag) or elem[0]
    if vr == "SQ" or type(elem[1]) is list:
        recurse(item, tag, run)
    elif vr in ("DA", "DT"):
        shift(item, tag, run)
    elif vr == "UI":
        uid(item, tag, run)
    elif vr in TEXT_VRS or vr in ("CS", "AE", "UR"):
        run.deferred.append((item, tag))


def shift(item: Item, tag: int, run: RawRun) -> None:
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


def scrub(item: Item, tag: int, run: RawRun) -> None:
    run.deferred.append((item, tag))


def recurse(item: Item, tag: int, run: RawRun) -> None:
    value = item[tag][1]
    if type(value) is list:
        for sub in value:
            run.walk(sub)


def identity(item: Item, tag: int, run: RawRun, field: str) -> None:
    run.collect(item, tag)
    vr = item[tag][0]
    run.write(item, tag, vr if vr in TEXTUAL_VRS else (run.plan.vr(tag) or "LO"),
              [getattr(run.ids, field)])
    run.replaced.add(tag)


def accession(item: Item, tag: int, run: RawRun, fallback) -> None:
    if run.ids.accession_number is None:
        if fallback is not None:
            fallback(item, tag, run)
    else:
        identity(item, tag, run, "accession_number")


def replace(item: Item, tag: int, run: RawRun, value: str | None) -> None:
    run.collect(item, tag)
    vr = run.plan.vr(tag)
    if vr not in WRITABLE:
        raise Unsupported("a replacement value for a VR that is not text")
    run.write(item, tag, vr, [value or ""])
    run.replaced.add(tag)


def hash_value(item: Item, tag: int, run: RawRun) -> None:
    vr, values = run.values(item, tag)
    if vr == "UI":
        uid(item, tag, run)
        return
    run.collect(item, tag)
    length = min(16, h.MAX_LENGTH.get(vr, 16))
    run.write(item, tag, vr, [run.pseudo.text(v, length) for v in values])
    run.replaced.add(tag)


def private(item: Item, tag: int, run: RawRun) -> None:
    """Under Retain Safe Private: see `handlers.private`."""
    element = tag & 0xFFFF
    if element < 0x0010:
        remove_private(item, tag, run)
        return
    if element <= 0x00FF:
        return
    creator = item.get((tag & 0xFFFF0000) | (element >> 8))
    name = ""
    if creator is not None and type(creator[1]) is bytes:
        name = creator[1].decode(run.codec, "replace").rstrip("\x00").strip().upper()
    if (tag >> 16, name, element & 0xFF) not in run.plan.safe_private:
        remove_private(item, tag, run)
        return
    run.private_kept += 1
    if run.plan.config.shifts_dates:
        elem = item[tag]
        if elem[0] == "UN":
            elem = _private_vr(elem, tag, name)
            item[tag] = elem
        if elem[0] in ("DA", "DT"):
            shift(item, tag, run)


def _private_vr(elem: Elem, tag: int, creator: str) -> Elem:
    """An implicit VR file does not say a private element is a date; the
    private dictionary may."""
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


# -- the plan's table, translated --------------------------------------------

RAW = {h.remove: remove, h.remove_private: remove_private, h.empty: empty, h.dummy: dummy,
       h.uid: uid, h.clean: clean, h.shift: shift, h.scrub: scrub, h.recurse: recurse,
       h.identity: identity, h.accession: accession, h.replace: replace,
       h.hash_value: hash_value, h.private: private}


def translate(handler):
    """The raw twin of one of the plan's handlers (a partial keeps its arguments)."""
    if handler is None:
        return None
    if isinstance(handler, partial):
        keywords = {k: translate(v) if callable(v) else v for k, v in handler.keywords.items()}
        return partial(RAW[handler.func], *handler.args, **keywords)
    return RAW[handler]


def raw_actions(plan: Plan) -> dict:
    if not plan.raw_actions:
        plan.raw_actions.update((tag, translate(hd)) for tag, hd in plan.actions.items())
    return plan.raw_actions


def resolve(plan: Plan, actions: dict, tag: int):
    handler = plan.actions.get(tag, UNSET)
    if handler is UNSET:
        handler = plan.resolve(tag)
    raw = actions[tag] = translate(handler)
    return raw
