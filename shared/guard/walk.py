"""The guard's own reading of a DICOM file: every element at every depth, the
file meta, private and UN elements, and what follows the pixel data.

It shares nothing with the reader the profile uses, so a file that misleads
one is unlikely to mislead the other the same way. Structure comes from the
bytes (an explicit SQ, an undefined length, an item tag); meaning comes from
the data dictionary: an element's VR is the dictionary's whatever the file
claims, so a StudyDate written as LO is still a date and a name written as OB
is still a name. What it cannot parse it refuses (`Unreadable`) rather than
guess past: the caller fails the instance.
"""

from __future__ import annotations

import mmap
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR

from relay_shared.reasons import RelayError

ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
CHARSET, TRANSFER_SYNTAX = 0x00080005, 0x00020010
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
SHORT_VRS = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())
LONG_NAMES = {code: code.decode() for code in LONG_VRS}
SHORT_NAMES = {code: code.decode() for code in SHORT_VRS}
IMPLICIT_LE, EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", \
    "1.2.840.10008.1.2.1.99"
# Deeper than the profile can go: its reader and actions recurse per level and
# fail such an image (RecursionError) past about 190 levels, so whatever the
# profile de-identifies the guard reads too. Two frames a level stay well
# inside Python's recursion limit.
MAX_DEPTH = 256
NUMBERS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "AT", "OF", "OD", "OL", "OV", "SV",
                     "UV"})
WRITTEN_AS_TEXT = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                             "ST", "TM", "UC", "UI", "UR", "UT"})
BULK_LIMIT = 4096
# Read first, in turn; a header longer than the last is read whole. Most
# headers fit the first: reading more costs more than walking it.
HEAD_BYTES = (16 << 10, 256 << 10)
RAW_VRS = frozenset({"UN", "OB", "OW", "SQ"})  # no text VR known: read as bytes
SINGLE_VALUED = RAW_VRS | {"LT", "ST", "UT", "UR"}  # a backslash there is text
PN_DELIMITERS = {0x5E, 0x3D}  # a longer binary value of no known text VR is data, not text


@dataclass(frozen=True)
class Selection:
    """Which elements a reader keeps: the structure of every element is still
    checked, but only the kept ones are made into `Element`s."""

    skip_vrs: frozenset[str] = frozenset()  # by the dictionary's VR
    tags: frozenset[int] | None = None  # None: every tag; else these, and...
    always_vrs: frozenset[str] = frozenset()  # ...any element of these VRs, private
    # elements and the repeating groups (50xx, 60xx) whatever their tag


EVERYTHING = Selection()
REPEATING_GROUPS = frozenset({0x5000, 0x6000})


class Unreadable(RelayError, ValueError):
    """The guard cannot read this file to the end; its reason is a fixed phrase."""


@dataclass(slots=True)
class Element:
    prefix: str  # the sequences and items it is in: "(0040,A730)[0]."
    tag: int
    vr: str  # the dictionary's VR; for private and unknown tags the file's, or UN
    value: bytes
    encodings: tuple[str, ...]

    @property
    def path(self) -> str:
        """Where it is, e.g. "(0040,A730)[0].(0040,A160)": tags only, never a value."""
        return f"{self.prefix}({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    def texts(self) -> list[str]:
        """The value decoded under the data set's character set, split into
        its values where the VR is multi-valued."""
        vr, value = self.vr, self.value
        if vr in RAW_VRS:
            text = value.decode("latin-1")
        elif len(self.encodings) == 1 or b"\x1b" not in value:
            text = value.decode(self.encodings[0], "replace")
        else:  # ISO 2022 code extensions, switched by escape sequences
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                text = decode_bytes(value, list(self.encodings),
                                    PN_DELIMITERS if vr == "PN" else set())
        text = text.rstrip("\x00 ")
        if vr in SINGLE_VALUED:
            return [text] if text else []
        return [part.strip() for part in text.split("\\") if part.strip()]


def meaning_vr(tag: int, written: str) -> str:
    """The dictionary's VR for a public tag; the file's for a private one."""
    return _dictionary_vr(tag) or written


_BY_TAG: dict[int, str] = {}  # tag -> the dictionary's VR, "" where the file's counts


def _dictionary_vr(tag: int) -> str:
    found = _BY_TAG.get(tag)
    if found is None:
        if tag >> 16 & 1:
            found = "LO" if tag & 0xFF00 == 0 and tag & 0xFF >= 0x10 else ""
        else:
            try:
                found = dictionary_VR(tag)
            except KeyError:
                found = ""
            found = "" if " or " in found else found
        if len(_BY_TAG) < 65536:  # private tags are many; the dictionary is not
            _BY_TAG[tag] = found
    return found


def read_elements(path: Path, selection: Selection = EVERYTHING) -> list[Element]:
    """Every element of the file at `path` (that `selection` keeps), meta first,
    in file order. Read as its head, then what follows the pixel data: the
    pixels are never read. A header longer than the heads tried, encapsulated
    or deflated data, and damage are read again from a mapping of the whole
    file, which then decides."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        if size == 0:
            raise Unreadable("empty file")
        for head in HEAD_BYTES:
            if size <= head:
                return parse(os.pread(descriptor, size, 0), selection)
            try:
                return parse(os.pread(descriptor, head, 0), selection,
                             lambda offset: os.pread(descriptor, size - offset, offset))
            except Unreadable:
                continue  # not within this head and the tail: a larger one
        with mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ) as data:
            return parse(data, selection)
    finally:
        os.close(descriptor)


def parse(data: bytes | mmap.mmap, selection: Selection = EVERYTHING,
          tail: Callable[[int], bytes] | None = None) -> list[Element]:
    """`tail`, when `data` is only the head of the file: the bytes from an offset
    to the end of the file, fetched once the pixel data is reached."""
    start = 132 if data[128:132] == b"DICM" else 0
    meta_end, syntax = start, ""
    meta: list[Element] = []
    if data[start:start + 2] == b"\x02\x00":
        reader = _Reader(data, False, True, EVERYTHING)
        meta_end = reader.walk(start, len(data), "", (), 0, meta, group=2)
        syntax = next((e.value.decode("ascii", "replace").strip("\x00 ") for e in meta
                       if e.tag == TRANSFER_SYNTAX), "")
    body: bytes | mmap.mmap = data
    if syntax == DEFLATED:
        if tail is not None:
            raise Unreadable("a deflated data set is read whole")
        try:
            body = zlib.decompress(bytes(data[meta_end:]), -zlib.MAX_WBITS)
        except zlib.error:
            raise Unreadable("deflated data set that does not inflate") from None
        meta_end = 0
    implicit = syntax == IMPLICIT_LE or (not syntax and _looks_implicit(body, meta_end))
    reader = _Reader(body, implicit, syntax != EXPLICIT_BE, selection)
    reader.tail = tail
    reader.walk(meta_end, len(body), "", (), 0, meta)
    if reader.tail is not None:
        raise Unreadable("the head read holds no pixel data to skip")
    return meta


def _looks_implicit(data: bytes | mmap.mmap, at: int) -> bool:
    return bytes(data[at + 4:at + 6]) not in SHORT_VRS | LONG_VRS


class _Reader:
    def __init__(self, data: bytes | mmap.mmap, implicit: bool, little: bool,
                 selection: Selection):
        self.data, self.implicit, self.selection = data, implicit, selection
        self.tail: Callable[[int], bytes] | None = None
        order = "<" if little else ">"
        self.tag_len = struct.Struct(order + "HHL")
        self.short = struct.Struct(order + "HH2sH")
        self.long_len = struct.Struct(order + "L")

    def walk(self, at: int, end: int, prefix: str, encodings: tuple[str, ...], depth: int,
             out: list[Element], group: int | None = None) -> int:
        """Elements from `at` to `end` (or an item delimiter) into `out`; where it stopped.
        One loop with its lookups bound to locals: it runs for every element of
        every original and every output."""
        if depth > MAX_DEPTH:
            raise Unreadable("sequences nested deeper than the guard reads")
        encodings = encodings or ("iso8859",)
        data, implicit, append, by_tag = self.data, self.implicit, out.append, _BY_TAG
        skip_vrs, tags, always_vrs = (self.selection.skip_vrs, self.selection.tags,
                                      self.selection.always_vrs)
        tag_len, short, long_len = (self.tag_len.unpack_from, self.short.unpack_from,
                                    self.long_len.unpack_from)
        top = depth == 0 and group is None
        while at < end:
            if top and not data[at] and not any(data[at:at + 4]) and not any(data[at:end]):
                # Zeros after the data set: media written in sectors pad the last
                # one so. Tag (0000,0000) never starts an element of a data set,
                # and zeros hold nothing. Any other byte after it is still read
                # as an element, and refused if it is not one: bytes that could
                # hide a value are never skipped.
                return end
            if at + 8 > end:
                raise Unreadable("an element header runs past the end")
            if implicit:
                high, low, length = tag_len(data, at)
            else:  # one unpack: tag, VR and the short length
                high, low, code, length = short(data, at)
            tag = high << 16 | low
            if group is not None and high != group:
                return at
            if tag >= ITEM:
                if tag == ITEM_END:
                    return at + 8
                if tag in (ITEM, SEQUENCE_END):
                    raise Unreadable("an item tag where an element belongs")
            if implicit:
                vr = "UN"
                at += 8
            else:
                vr = SHORT_NAMES.get(code, "")
                if vr:
                    at += 8
                else:
                    vr = LONG_NAMES.get(code, "")
                    if not vr:
                        raise Unreadable("an element with a VR the standard does not define")
                    if at + 12 > end:
                        raise Unreadable("an element header runs past the end")
                    length = long_len(data, at + 8)[0]
                    at += 12
            meaning = by_tag.get(tag)
            meaning = (_dictionary_vr(tag) if meaning is None else meaning) or vr
            if vr == "SQ" or (meaning == "SQ" and (length == UNDEFINED or vr == "UN")) or (
                    length == UNDEFINED and tag not in PIXEL_DATA):
                at = self._sequence(at, length, f"{prefix}({high:04X},{low:04X})", encodings,
                                    depth, out, vr)
                continue
            if length == UNDEFINED:  # encapsulated pixel data: fragments to skip
                at = self._skip_fragments(at)
                continue
            if at + length > end:
                if self.tail is not None and depth == 0 and tag in PIXEL_DATA:
                    # Only the head was read: go on with what follows the pixels.
                    data = self.data = data[:at] + self.tail(at + length)
                    end, self.tail = len(data), None
                    continue
                raise Unreadable("a value runs past the end of its data set")
            if tag == CHARSET:
                encodings = _encodings(data[at:at + length])
            if (meaning in NUMBERS and vr not in WRITTEN_AS_TEXT) or tag in PIXEL_DATA or \
                    meaning in skip_vrs or (tags is not None and tag not in tags
                                            and meaning not in always_vrs and not high & 1
                                            and high & 0xFF00 not in REPEATING_GROUPS):
                at += length  # binary numbers hold no text; pixels are another matter
                continue
            value = data[at:at + length]
            # Text written where the dictionary has a number is read as text.
            append(Element(prefix, tag, "UN" if meaning in NUMBERS else meaning, value,
                           encodings))
            at += length
        return at

    def _sequence(self, at: int, length: int, path: str, encodings: tuple[str, ...],
                  depth: int, out: list[Element], vr: str) -> int:
        end = len(self.data) if length == UNDEFINED else at + length
        if end > len(self.data):
            raise Unreadable("a sequence runs past the end of its data set")
        # A sequence stored as UN is encoded implicit little endian (PS3.5 6.2.2).
        reader = _Reader(self.data, True, True, self.selection) if vr == "UN" else self
        index = 0
        while at < end:
            if at + 8 > len(self.data):
                raise Unreadable("a sequence runs past the end of its data set")
            high, low, item_length = reader.tag_len.unpack_from(self.data, at)
            tag = high << 16 | low
            if tag == SEQUENCE_END:
                return at + 8
            if tag != ITEM:
                raise Unreadable("a sequence holds something other than items")
            item_end = end if item_length == UNDEFINED else at + 8 + item_length
            if item_end > end:
                raise Unreadable("an item runs past the end of its sequence")
            stop = reader.walk(at + 8, item_end, f"{path}[{index}].", encodings, depth + 1, out)
            at = stop if item_length == UNDEFINED else item_end
            index += 1
        if length == UNDEFINED:
            raise Unreadable("a sequence without its end")
        return at

    def _skip_fragments(self, at: int) -> int:
        while at + 8 <= len(self.data):
            high, low, length = self.tag_len.unpack_from(self.data, at)
            tag = high << 16 | low
            if tag == SEQUENCE_END:
                return at + 8
            if tag != ITEM or length == UNDEFINED or at + 8 + length > len(self.data):
                raise Unreadable("encapsulated pixel data that does not parse")
            at += 8 + length
        raise Unreadable("encapsulated pixel data without its end")


@lru_cache(maxsize=64)
def _encodings(value: bytes) -> tuple[str, ...]:
    terms = [t.strip() for t in value.decode("ascii", "replace").split("\\")]
    try:
        with warnings.catch_warnings():  # a misspelt term is corrected, with a warning
            warnings.simplefilter("ignore")
            return tuple(convert_encodings(terms or [""]))
    except (LookupError, ValueError):
        raise Unreadable("a character set the guard cannot decode") from None
