"""A DICOM header as bytes and dictionaries, without pydicom's element objects.

pydicom turns every element it touches into a DataElement (VR lookup, value
conversion, PersonName objects); for a header of a hundred elements that
costs more than de-identifying it. Here a Part 10 file is parsed once, up to
its pixel data, into plain dictionaries keyed by integer tag whose values are
the element's bytes (`Elem`), and written back the same way: an element the
profile keeps is copied byte for byte.

What this parser does not handle raises `Unsupported`, and the caller goes
through pydicom instead: deflated transfer syntaxes, character sets with code
extensions (ISO 2022), ISO_IR 13, or set inside a sequence, public elements
stored as UN, undefined lengths outside sequences, files without the DICM
prefix. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from io import BytesIO

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
SPECIFIC_CHARACTER_SET = 0x00080005
TRANSFER_SYNTAX = 0x00020010
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT",
                      "SV", "UV"})
KNOWN_VRS = LONG_VRS | {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                        "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"}
TEXTUAL_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                         "ST", "TM", "UC", "UI", "UR", "UT"})
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})  # a backslash there is text
# Character sets that are one codec, without code extensions (no escape
# sequences): a value is decoded whole, then split on backslash, as pydicom
# does. ISO_IR 13 is left to pydicom (its 0x5C is the yen sign).
CODECS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1",
          "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3", "ISO_IR 110": "iso8859_4",
          "ISO_IR 126": "iso8859_7", "ISO_IR 127": "iso8859_6", "ISO_IR 138": "iso8859_8",
          "ISO_IR 144": "iso8859_5", "ISO_IR 148": "iso8859_9", "ISO_IR 166": "tis_620",
          "ISO_IR 192": "utf-8", "GB18030": "gb18030", "GBK": "gbk"}
PREAMBLE = b"\x00" * 128 + b"DICM"
VR_NAMES = {vr.encode(): vr for vr in KNOWN_VRS}
META_VERSION = b"\x00\x01"


class Unsupported(ValueError):
    """Not for this parser: the caller goes through pydicom."""


# One element: (VR, value), the value being the bytes as stored or, for a
# sequence, the list of its items. A plain tuple: a header has a hundred of
# them and a tuple costs a third of an object to make. Never changed in
# place: an action puts a new tuple in the item.
Elem = tuple  # tuple[str, bytes | list[Item]]
Item = dict[int, Elem]


class Encoding:
    """How the dataset after the file meta is encoded; structs built once."""

    __slots__ = ("implicit", "little", "long", "order", "plain", "short")

    def __init__(self, implicit: bool, little: bool):
        self.implicit, self.little = implicit, little
        self.order = order = "<" if little else ">"
        self.short = struct.Struct(order + "HH2sH")
        self.long = struct.Struct(order + "HH2s2xL")
        self.plain = struct.Struct(order + "HHL")  # implicit elements, items, delimiters


ENCODINGS = {(i, e): Encoding(i, e) for i in (False, True) for e in (False, True)}
META = ENCODINGS[(False, True)]


class Header:
    """A parsed header: file meta (explicit VR little endian) and the dataset
    before the pixel data; `pixel_offset` is where the pixel data starts in
    the file (None when the file has none)."""

    __slots__ = ("body", "codec", "data", "encoding", "meta", "pixel_offset")

    def __init__(self, meta: Item | None, body: Item, encoding: Encoding, codec: str,
                 pixel_offset: int | None = None, data: bytes = b""):
        self.meta = meta
        self.body = body
        self.encoding = encoding
        self.codec = codec
        self.pixel_offset = pixel_offset
        self.data = data  # the bytes it was parsed from, for pydicom when needed

    def __repr__(self) -> str:
        return f"Header({len(self.body)} elements, pixel data at {self.pixel_offset})"

    @property
    def transfer_syntax(self) -> str | None:
        elem = (self.meta or {}).get(TRANSFER_SYNTAX)
        return None if elem is None else elem[1].rstrip(b"\x00 ").decode("ascii", "replace")

    def get(self, keyword: str, default: str = "") -> str:
        """A top-level text value by keyword, as one string ('A\\B' when multi-valued)."""
        tag = tag_for_keyword(keyword)
        elem = self.body.get(tag) if tag is not None else None
        if elem is None or type(elem[1]) is list:
            return default
        return elem[1].decode(self.codec, "replace").rstrip("\x00 ")

    def __contains__(self, keyword: str) -> bool:
        return tag_for_keyword(keyword) in self.body

    def encode(self) -> bytes:
        """The whole file up to the pixel data: preamble, file meta, dataset."""
        meta = encode_meta(self.meta) if self.meta is not None else b""
        return PREAMBLE + meta + encode_item(self.body, self.encoding)

    def to_dataset(self) -> Dataset:
        """The same header as a pydicom Dataset (elements left raw)."""
        enc = self.encoding
        body = encode_item(self.body, enc)
        ds = read_dataset(BytesIO(body), is_implicit_VR=enc.implicit,
                          is_little_endian=enc.little)
        if self.meta is not None:
            meta = read_dataset(BytesIO(encode_meta(self.meta)), is_implicit_VR=False,
                                is_little_endian=True)
            ds.file_meta = FileMetaDataset(meta)
        return ds


# -- parsing -----------------------------------------------------------------

class Truncated(Unsupported):
    """The bytes end inside the header: read more of the file."""


def parse_file(data: bytes, complete: bool = True) -> Header:
    """A Part 10 file (or its first bytes, `complete=False`, enough to hold
    everything before the pixel data) into a Header."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unsupported("no DICM prefix")
    meta, pos = _parse_meta(data, 132)
    syntax = meta.get(TRANSFER_SYNTAX)
    uid = syntax[1].rstrip(b"\x00 ").decode("ascii", "replace") if syntax else ""
    if uid == DeflatedExplicitVRLittleEndian:
        raise Unsupported("deflated")
    enc = ENCODINGS[(uid == ImplicitVRLittleEndian, uid != ExplicitVRBigEndian)]
    body, pixel_offset = parse_dataset(data, pos, enc, complete)
    return Header(meta, body, enc, _codec(body), pixel_offset, data)


def parse_dataset(data: bytes, pos: int, enc: Encoding,
                  complete: bool = True) -> tuple[Item, int | None]:
    """Top-level elements from `pos` up to the pixel data or the end."""
    parser = _Parser(data, enc)
    try:
        body, end = parser.elements(pos, len(data), top=True)
    except (struct.error, IndexError) as exc:
        raise (Unsupported if complete else Truncated)("the header is cut short") from exc
    if end is None and not complete:
        raise Truncated("no pixel data found in the bytes read")
    return body, end


def parse_file_meta(data: bytes) -> tuple[Item, int]:
    """The file meta of a Part 10 file, and where its dataset starts."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unsupported("no DICM prefix")
    return _parse_meta(data, 132)


def _parse_meta(data: bytes, pos: int) -> tuple[Item, int]:
    meta: Item = {}
    short, long = META.short, META.long
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        group, element, vr_bytes, length = short.unpack_from(data, pos)
        vr = vr_bytes.decode("ascii", "replace")
        if vr in LONG_VRS:
            length = long.unpack_from(data, pos)[3]
            pos += 12
        else:
            pos += 8
        if vr not in KNOWN_VRS or length == UNDEFINED or pos + length > len(data):
            raise Unsupported("unreadable file meta")
        meta[group << 16 | element] = (vr, data[pos:pos + length])
        pos += length
    return meta, pos


def _codec(body: Item) -> str:
    elem = body.get(SPECIFIC_CHARACTER_SET)
    text = "" if elem is None else elem[1].decode("ascii", "replace").strip("\x00 ")
    try:
        return CODECS[text]
    except KeyError:
        raise Unsupported("character set") from None


_implicit_vrs: dict[int, str] = {}


def implicit_vr(tag: int) -> str:
    """The VR an implicit VR file does not carry: the dictionary's (the first
    of an ambiguous 'US or SS'), LO for private creators, UN if unknown."""
    try:
        return _implicit_vrs[tag]
    except KeyError:
        pass
    if tag >> 16 & 1:
        vr = "LO" if 0x10 <= tag & 0xFFFF <= 0xFF else "UN"
    elif tag & 0xFFFF == 0:
        vr = "UL"
    else:
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            vr = "UN"
    _implicit_vrs[tag] = vr
    return vr


class _Parser:
    def __init__(self, data: bytes, enc: Encoding):
        self.data, self.enc = data, enc

    def elements(self, pos: int, end: int, top: bool = False,
                 delimited: bool = False) -> tuple[Item, int | None]:
        """Elements from pos to end, or to the item delimiter if `delimited`.
        Returns the item and, at top level, the offset of the pixel data
        (None if none); inside an item, the offset after it."""
        data, enc = self.data, self.enc
        item: Item = {}
        vr: str | None
        implicit, short, long, plain = enc.implicit, enc.short.unpack_from, \
            enc.long.unpack_from, enc.plain.unpack_from
        size = len(data)
        while pos < end:
            start = pos
            if implicit:
                group, element, length = plain(data, pos)
                tag = group << 16 | element
                vr = _implicit_vrs.get(tag) or implicit_vr(tag)
                pos += 8
            else:
                group, element, vr_bytes, length = short(data, pos)
                tag = group << 16 | element
                vr = VR_NAMES.get(vr_bytes)
                if vr in LONG_VRS:
                    length = long(data, pos)[3]
                    pos += 12
                else:
                    pos += 8
                if vr is None and group != 0xFFFE:
                    raise Unsupported("unknown VR")
                if vr == "UN" and not group & 1 and implicit_vr(tag) != "UN":
                    raise Unsupported("a public element stored as UN")
            if group == 0xFFFE:
                if tag != ITEM_END or not delimited:
                    raise Unsupported("a delimiter out of place")
                return item, start + 8
            if top and tag >= 0x7FE00008 and tag in PIXEL_TAGS:
                return item, start
            if length == UNDEFINED:
                if vr == "SQ" or (implicit and vr == "UN"):
                    value, pos = self.items(pos, length)
                    item[tag] = ("SQ", value)
                    continue
                raise Unsupported("undefined length outside a sequence")
            if vr == "SQ":
                value, pos = self.items(pos, length)
                item[tag] = ("SQ", value)
                continue
            if pos + length > size:
                raise IndexError("value past the end")
            item[tag] = (vr, data[pos:pos + length])
            pos += length
        if delimited:
            raise IndexError("item without its delimiter")
        if pos > end:
            raise Unsupported("an element overruns its item")
        return item, None if top else pos

    def items(self, pos: int, length: int) -> tuple[list[Item], int]:
        data, plain = self.data, self.enc.plain
        end = len(data) if length == UNDEFINED else pos + length
        out: list[Item] = []
        while pos < end:
            group, element, item_length = plain.unpack_from(data, pos)
            tag = group << 16 | element
            pos += 8
            if tag == SEQUENCE_END:
                if length != UNDEFINED:
                    raise Unsupported("sequence delimiter in a sequence of defined length")
                return out, pos
            if tag != ITEM:
                raise Unsupported("expected an item")
            if item_length == UNDEFINED:
                item, after = self.elements(pos, len(data), delimited=True)
                assert after is not None
                pos = after
            else:
                item, _ = self.elements(pos, pos + item_length)
                pos += item_length
            if SPECIFIC_CHARACTER_SET in item:
                raise Unsupported("a character set inside a sequence")
            out.append(item)
        if length == UNDEFINED:
            raise IndexError("sequence without its delimiter")
        if pos != end:
            raise Unsupported("an item overruns its sequence")
        return out, pos


# -- encoding ----------------------------------------------------------------

def encode_item(item: Item, enc: Encoding) -> bytes:
    """Elements in tag order; sequences and items with defined lengths."""
    parts: list[bytes] = []
    append = parts.append
    implicit, short, long, plain = enc.implicit, enc.short, enc.long, enc.plain
    for tag in sorted(item):
        vr, value = item[tag]
        if type(value) is list:
            value = b"".join(plain.pack(0xFFFE, 0xE000, len(b)) + b
                             for b in [encode_item(i, enc) for i in value])
        if implicit:
            append(plain.pack(tag >> 16, tag & 0xFFFF, len(value)))
        elif vr in LONG_VRS:
            append(long.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)))
        elif len(value) > 0xFFFF:
            raise Unsupported("a value too long for its VR")
        else:
            append(short.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)))
        append(value)
    return b"".join(parts)


def encode_meta(meta: Item) -> bytes:
    """The file meta group with its group length recomputed and the version
    added if missing (PS3.10 7.1)."""
    body = dict(meta)
    body.pop(0x00020000, None)
    body.setdefault(0x00020001, ("OB", META_VERSION))
    data = encode_item(body, META)
    return META.short.pack(0x0002, 0x0000, b"UL", 4) + struct.pack("<L", len(data)) + data


def text_bytes(vr: str, values: list[str], codec: str) -> bytes:
    """Values joined on backslash and padded to even length (UI with NUL)."""
    try:
        data = "\\".join(values).encode(codec)
    except UnicodeEncodeError as exc:
        raise Unsupported("a value the character set cannot hold") from exc
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return data


def text_values(elem: Elem, codec: str) -> list[str]:
    """The values of a textual element, trailing padding removed."""
    vr, value = elem
    text = value.decode(codec, "replace").rstrip("\x00 ")
    if not text:
        return []
    return [text] if vr in SINGLE_VALUED else text.split("\\")


def header_from_dataset(ds: Dataset) -> Header:
    """A pydicom dataset as a Header, through its bytes: raw elements are
    copied as they are, converted ones written by pydicom."""
    from .encode import encode_dataset, encode_file_meta

    implicit, little = ds.original_encoding
    meta_ds = getattr(ds, "file_meta", None)
    syntax = meta_ds.get("TransferSyntaxUID") if meta_ds is not None else None
    if implicit is None or little is None:
        implicit = syntax == ImplicitVRLittleEndian
        little = syntax != ExplicitVRBigEndian
    enc = ENCODINGS[(bool(implicit), bool(little))]
    body, _ = parse_dataset(encode_dataset(ds, enc.implicit, enc.little), 0, enc)
    meta = None
    if meta_ds is not None:
        meta, _ = _parse_meta(encode_file_meta(meta_ds), 0)
    return Header(meta, body, enc, _codec(body))
