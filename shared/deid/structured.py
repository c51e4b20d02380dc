"""Structured content (SR documents, key objects) under the profile.

Content Sequence (0040,A730) is D in PS3.15 Table E.1-1: the content tree
is replaced by a dummy, here one TEXT content item with a neutral value, so
the document keeps a valid SR structure (a root CONTAINER that CONTAINS a
TEXT) and nothing of what was written. The root's Content Template Sequence
goes with the tree: the dummy follows no template.

Under the Clean Structured Content option the code is C and the tree is kept
and cleaned by the profile at every depth (`actions.clean`): each item's
Person Name dummied, Date, DateTime and Time dummied or shifted like the
profile's dates, UID mapped like every UID, Text Value and every Code Meaning
scrubbed of the series' originals and of what the detectors find (see
`detectors.py`), local codes pseudonymised (`codes.py`). Relationship and
value types, concept names and references between items stay.
"""

from __future__ import annotations

from typing import Protocol

from ..dicom.charset import Charset
from ..dicom.header import Elem, Item
from .values import DUMMY_TEXT

CONTENT_SEQUENCE = 0x0040A730
CONTENT_TEMPLATE_SEQUENCE = 0x0040A504
DUMMY_CONTENT = ("dummy_content", None)
# The dummy's concept name: (121106, DCM, "Comment"), from PS3.16.
CONCEPT = (("00080100", "SH", "121106"), ("00080102", "SH", "DCM"), ("00080104", "LO", "Comment"))


class Run(Protocol):
    """What the dummy needs of the walk (`actions.Run`)."""

    codec: Charset
    replaced: set[int]
    removed: set[int]

    def collect(self, item: Item, tag: int) -> None: ...


def structured_steps(codes: dict[int, str]) -> dict[int, tuple[str, None]]:
    """The profile's steps for structured content under the chosen options:
    the dummy where the table's code is D."""
    return {CONTENT_SEQUENCE: DUMMY_CONTENT} if codes.get(CONTENT_SEQUENCE) == "D" else {}


def dummy_content(item: Item, tag: int, run: Run) -> None:
    """Replace the content tree by one TEXT item; its originals are still
    collected, since they may appear in free text the profile keeps."""
    run.collect(item, tag)
    encode = run.codec.encode

    def text(vr: str, value: str) -> Elem:
        return (vr, encode(vr, [value]))

    concept = {int(t, 16): text(vr, value) for t, vr, value in CONCEPT}
    dummy = {0x0040A010: text("CS", "CONTAINS"), 0x0040A040: text("CS", "TEXT"),
             0x0040A043: ("SQ", [concept]), 0x0040A160: text("UT", DUMMY_TEXT)}
    item[tag] = ("SQ", [dummy])
    run.replaced.add(tag)
    if item.pop(CONTENT_TEMPLATE_SEQUENCE, None) is not None:
        run.removed.add(CONTENT_TEMPLATE_SEQUENCE)
