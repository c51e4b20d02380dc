"""What a reviewer is shown of one de-identified instance: every attribute left in it,
each with the action that made it what it is, and, for an admin, what it was before.

The action comes from the series' audit record (tags per action of the profile), so
the page and the audit cannot disagree: an attribute the profile did not touch was
kept; one the relay writes about its own de-identification was added.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

MAX_TEXT = 256  # a longer value is cut, and says so: a page of text is not reviewable
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Written by the relay about its own work (PS3.3 C.7.1.1, C.7.6.1), and by the pixel step.
ADDED = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
ADDED_ACTION = "added by the relay"
ACTIONS = (("replaced", "replaced"), ("shifted", "date shifted"), ("cleaned", "cleaned"),
           ("emptied", "emptied"), ("removed", "removed"))


@dataclass(frozen=True)
class AttributeRow:
    path: str  # "(0008,1140)[0].(0008,1150)" inside sequences
    keyword: str
    vr: str
    value: str
    action: str
    before: str | None = None  # an admin's view only


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def display_value(elem: DataElement) -> str:
    if elem.VR == "SQ":
        return f"sequence of {len(elem.value or [])} item(s)"
    if elem.VR in BINARY_VRS or elem.tag == 0x7FE00010:
        size = len(elem.value) if isinstance(elem.value, bytes | bytearray) else 0
        return f"{size} bytes"
    if elem.value is None or elem.value == "":
        return ""
    text = str(elem.value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"... ({len(text)} characters)"


def action_of(tag: int, audit: dict) -> str:
    label = tag_text(tag)
    for key, action in ACTIONS:
        if label in (audit.get(key) or ()):
            return action
    if tag in ADDED:
        return ADDED_ACTION
    if tag >> 16 & 1:
        return "kept (private)"
    return "kept"


def attributes_left(ds: Dataset, audit: dict) -> list[AttributeRow]:
    """Every element of `ds` but the pixel data, sequences walked into."""
    return list(_walk(ds, "", audit, None))


def _walk(ds: Dataset, prefix: str, audit: dict, parent: str | None
          ) -> Iterator[AttributeRow]:
    for elem in ds:
        if elem.tag == 0x7FE00010:
            continue
        path = prefix + tag_text(elem.tag)
        action = action_of(elem.tag, audit)
        if parent == ADDED_ACTION and action == "kept":
            action = ADDED_ACTION  # inside what the relay added, the relay wrote it all
        yield AttributeRow(path, elem.keyword or "", elem.VR, display_value(elem), action)
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or []):
                yield from _walk(item, f"{path}[{index}].", audit, action)


def changed_values(original: Dataset, audit: dict) -> dict[str, str]:
    """The original text of each top-level attribute the profile changed or removed,
    by tag: what an admin compares the output with. Sealed before it is stored."""
    changed = {t for key, _ in ACTIONS for t in (audit.get(key) or ())}
    out: dict[str, str] = {}
    for elem in original:
        label = tag_text(elem.tag)
        if elem.tag != 0x7FE00010 and (label in changed or elem.tag >> 16 & 1):
            out[label] = display_value(elem)
    return out


def with_before(rows: list[AttributeRow], before: dict[str, str]) -> list[AttributeRow]:
    """`rows` with each top-level attribute's original value, and a row for each
    attribute that was removed."""
    seen = {row.path for row in rows}
    out = [AttributeRow(r.path, r.keyword, r.vr, r.value, r.action, before.get(r.path))
           for r in rows]
    out.extend(AttributeRow(path, _keyword(path), "", "", "removed", value)
               for path, value in sorted(before.items()) if path not in seen)
    return out


def _keyword(path: str) -> str:
    try:
        return keyword_for_tag(int(path[1:5] + path[6:10], 16)) or ""
    except ValueError:
        return ""
