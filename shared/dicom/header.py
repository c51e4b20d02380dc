"""A DICOM header as bytes and dictionaries, without pydicom's element objects.

pydicom turns every element it touches into a DataElement (VR lookup, value
conversion, PersonName objects); for a header of a hundred elements that
costs more than de-identifying it. Here a Part 10 file is parsed once, up to
its pixel data, into plain dictionaries keyed by integer tag whose values are
the element's bytes (`Elem`), and written back the same way: an element that
is not changed is copied byte for byte.

What real files hold is read as pydicom reads it: deflated datasets are
inflated (up to `max_inflated_bytes`), any character set is decoded (see
`charset.py`), a public element stored as UN gets its dictionary VR (a
sequence stored as UN is parsed as the implicit VR items it holds), and
encapsulated pixel data inside an item (an icon) is kept as bytes. What
cannot be read raises `DicomFormatError`, naming the problem. Pure: bytes in,
bytes out.
"""

from __future__ import annotations

import struct
import zlib
from contextlib import suppress
from io import BytesIO

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from ..reasons import RelayError
from .charset import DEFAULT, Charset, charset_of
from .vocabulary import (
    FIRST_PIXEL_TAG,
    ITEM,
    ITEM_END,
    KNOWN_VRS,
    LONG_LENGTH_VRS,
    PIXEL_DATA,
    PIXEL_TAGS,
    SEQUENCE_END,
    SPECIFIC_CHARACTER_SET,
    TRANSFER_SYNTAX,
    UNDEFINED_LENGTH,
)

PREAMBLE = b"\x00" * 128 + b"DICM"
VR_NAMES = {vr.encode(): vr for vr in KNOWN_VRS}
META_VERSION = b"\x00\x01"
# A deflated dataset is inflated in memory up to its pixel data; a few KB
# that inflate to gigabytes must not take the process down. The default of
# RELAY_MAX_INFLATED_BYTES, so what ingest lets through the engine reads too.
MAX_INFLATED_BYTES = 256 << 20


class DicomFormatError(RelayError, ValueError):
    """The bytes are not a DICOM file this layer can read; the message names why
    in fixed words (never a value of the file), so it may be shown as a reason."""

    code = "unreadable_dicom"


class Truncated(DicomFormatError):
    """The bytes end inside the header: read more of the file."""


class Encapsulated(bytes):
    """The items of encapsulated pixel data (undefined length), delimiter included."""


# One element: (VR, value), the value being the bytes as stored or, for a
# sequence, the list of its items. A plain tuple: a header has a hundred of
# them and a tuple costs a third of an object to make. Never changed in
# place: an action puts a new tuple in the item.
Elem = tuple  # tuple[str, bytes | list[Item]]
Item = dict[int, Elem]
# An element stored under a VR the data dictionary does not give its tag: the
# item that holds it, its tag, and the VR the file wrote.
Misfit = tuple[Item, int, str]


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
IMPLICIT = ENCODINGS[(True, True)]


class Header:
    """A parsed header: file meta (explicit VR little endian) and the dataset
    before the pixel data. `pixel_offset` is where the pixel data starts (None
    when there is none): in the file, or, when `deflated`, in the inflated
    dataset."""

    __slots__ = ("body", "codec", "deflated", "encoding", "meta", "misfits", "pixel_offset")

    def __init__(self, meta: Item | None, body: Item, encoding: Encoding, codec: Charset,
                 pixel_offset: int | None = None, deflated: bool = False,
                 misfits: list[Misfit] | None = None):
        self.meta = meta
        self.body = body
        self.encoding = encoding
        self.codec = codec
        self.pixel_offset = pixel_offset
        self.deflated = deflated
        # Elements whose explicit VR is not the data dictionary's (see `_Parser.misfit`).
        self.misfits: list[Misfit] = misfits if misfits is not None else []

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
        return "\\".join(self.codec.values(elem[0], elem[1]))

    def __contains__(self, keyword: str) -> bool:
        return tag_for_keyword(keyword) in self.body

    def encode(self) -> bytes:
        """The whole file up to the pixel data: preamble, file meta, dataset."""
        meta = encode_meta(self.meta) if self.meta is not None else b""
        body = encode_item(self.body, self.encoding)
        return PREAMBLE + meta + (deflate(body) if self.deflated else body)

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

def parse_file(data: bytes, complete: bool = True,
               max_inflated_bytes: int = MAX_INFLATED_BYTES) -> Header:
    """A Part 10 file (or its first bytes, `complete=False`, enough to hold
    everything before the pixel data) into a Header."""
    meta, pos = parse_file_meta(data)
    syntax = meta.get(TRANSFER_SYNTAX)
    uid = syntax[1].rstrip(b"\x00 ").decode("ascii", "replace") if syntax else ""
    deflated = uid == DeflatedExplicitVRLittleEndian
    if deflated:
        data, pos = inflate(data[pos:], complete, max_inflated_bytes), 0
    enc = _sniffed(data, pos, ENCODINGS[(uid == ImplicitVRLittleEndian,
                                         uid != ExplicitVRBigEndian)], bool(uid))
    misfits: list[Misfit] = []
    body, pixel_offset = parse_dataset(data, pos, enc, complete, misfits)
    return Header(meta, body, enc, charset_in(body, DEFAULT), pixel_offset, deflated, misfits)


MISMATCHED_SYNTAX = "the data set is not encoded as its transfer syntax says"


def _sniffed(data: bytes, pos: int, claimed: Encoding, stated: bool = False) -> Encoding:
    """The encoding the dataset is really in. A file that says nothing of its
    transfer syntax but whose first element has no VR is implicit VR, as
    pydicom reads it. A file whose transfer syntax says one thing while its
    bytes say the other is refused: which of the two is wrong cannot be told,
    and a guess either way can misread the pixel data (an implicit VR data set
    under a JPEG transfer syntax would be sent on labelled JPEG)."""
    if len(data) < pos + 6:
        return claimed
    explicit_looking = data[pos + 4:pos + 6] in VR_NAMES
    if claimed.implicit:
        if stated and explicit_looking and _written_vr_is_dictionary(data, pos, claimed):
            raise DicomFormatError(MISMATCHED_SYNTAX)
        return claimed
    if explicit_looking:
        return claimed
    if stated:
        raise DicomFormatError(MISMATCHED_SYNTAX)
    return ENCODINGS[(True, claimed.little)]


def _written_vr_is_dictionary(data: bytes, pos: int, enc: Encoding) -> bool:
    """Whether the first element carries the VR bytes of its own tag: an
    implicit VR length whose first two bytes spell that VR is no coincidence."""
    group, element = struct.unpack_from(enc.order + "HH", data, pos)
    return VR_NAMES[bytes(data[pos + 4:pos + 6])] in dictionary_vrs(group << 16 | element)


def inflate(data: bytes, complete: bool, max_bytes: int) -> bytes:
    """A deflated dataset (PS3.5 A.5), inflated up to `max_bytes`."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise DicomFormatError("the deflated dataset is corrupt") from exc
    if len(out) > max_bytes:
        raise DicomFormatError("the deflated dataset inflates past the size allowed")
    if complete and not inflater.eof and not inflater.unconsumed_tail:
        raise DicomFormatError("the deflated dataset is cut short")
    return out


def deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


def parse_dataset(data: bytes, pos: int, enc: Encoding, complete: bool = True,
                  misfits: list[Misfit] | None = None) -> tuple[Item, int | None]:
    """Top-level elements from `pos` up to the pixel data or the end. Elements
    written under a VR that is not the dictionary's are added to `misfits`."""
    parser = _Parser(data, enc, misfits)
    try:
        body, end = parser.elements(pos, len(data), top=True)
    except (struct.error, IndexError) as exc:
        raise (DicomFormatError if complete else Truncated)("the header is cut short") from exc
    if end is None and not complete:
        raise Truncated("no pixel data found in the bytes read")
    return body, end


def parse_file_meta(data: bytes) -> tuple[Item, int]:
    """The file meta of a Part 10 file, and where its dataset starts."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise DicomFormatError("no DICM prefix: not a DICOM Part 10 file")
    meta: Item = {}
    pos = 132
    short, long = META.short, META.long
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        group, element, vr_bytes, length = short.unpack_from(data, pos)
        vr = vr_bytes.decode("ascii", "replace")
        if vr in LONG_LENGTH_VRS:
            if pos + 12 > len(data):
                raise DicomFormatError("unreadable file meta")
            length = long.unpack_from(data, pos)[3]
            pos += 12
        else:
            pos += 8
        if vr not in KNOWN_VRS or length == UNDEFINED_LENGTH or pos + length > len(data):
            raise DicomFormatError("unreadable file meta")
        meta[group << 16 | element] = (vr, data[pos:pos + length])
        pos += length
    return meta, pos


def charset_in(item: Item, outer: Charset) -> Charset:
    """The character set of `item`: its own Specific Character Set, else the enclosing one."""
    elem = item.get(SPECIFIC_CHARACTER_SET)
    return outer if elem is None or type(elem[1]) is list else charset_of(elem[1])


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


_dictionary_vrs: dict[int, frozenset[str]] = {}


def dictionary_vrs(tag: int) -> frozenset[str]:
    """The VRs the data dictionary gives a public tag ("US or SS" is two);
    every VR for private, unknown and group length tags, which it does not
    describe."""
    try:
        return _dictionary_vrs[tag]
    except KeyError:
        pass
    allowed = KNOWN_VRS
    if not tag >> 16 & 1 and tag & 0xFFFF:
        with suppress(KeyError):  # repeating groups (60xx) are the dictionary's too
            allowed = frozenset(dictionary_VR(tag).split(" or "))
    _dictionary_vrs[tag] = allowed
    return allowed


class _Parser:
    def __init__(self, data: bytes, enc: Encoding, misfits: list[Misfit] | None = None):
        self.data, self.enc = data, enc
        self.misfits = misfits if misfits is not None else []

    def misfit(self, item: Item, tag: int, written: str) -> str:
        """An element whose explicit VR is not the dictionary's: its meaning is the
        dictionary's (a StudyDate written as LO is a date, a name written as OB a
        name), so its value is read as that VR from here on, and the element is
        listed for the engine, which checks that the value parses as that VR.
        Structure still follows the bytes: a value written as SQ is items, and
        one the dictionary calls SQ but written otherwise stays bytes."""
        self.misfits.append((item, tag, written))
        meant = implicit_vr(tag)
        return written if written == "SQ" or meant == "SQ" else meant

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
                if vr in LONG_LENGTH_VRS:
                    length = long(data, pos)[3]
                    pos += 12
                else:
                    pos += 8
                if vr is None and group != 0xFFFE:
                    raise DicomFormatError("an element with an unknown VR")
                if vr == "UN":
                    vr, pos = self.unknown(item, tag, pos, length)
                    if vr is None:
                        continue
                elif vr is not None and group != 0xFFFE and \
                        vr not in (_dictionary_vrs.get(tag) or dictionary_vrs(tag)):
                    vr = self.misfit(item, tag, vr)
            if group == 0xFFFE:
                if tag != ITEM_END or not delimited:
                    raise DicomFormatError("a delimiter out of place")
                return item, start + 8
            if top and tag >= FIRST_PIXEL_TAG and tag in PIXEL_TAGS:
                return item, start
            if vr == "SQ" or (length == UNDEFINED_LENGTH and implicit and vr == "UN"):
                value, pos = self.items(pos, length)
                item[tag] = ("SQ", value)
                continue
            if length == UNDEFINED_LENGTH:
                item[tag], pos = self.encapsulated(tag, vr, pos)
                continue
            if pos + length > size:
                raise IndexError("value past the end")
            item[tag] = (vr, data[pos:pos + length])
            pos += length
        if delimited:
            raise IndexError("item without its delimiter")
        if pos > end:
            raise DicomFormatError("an element overruns its item")
        return item, None if top else pos

    def unknown(self, item: Item, tag: int, pos: int, length: int) -> tuple[str | None, int]:
        """An element stored as UN in an explicit VR dataset. A public one is
        read with its dictionary VR, as pydicom does; a sequence (or anything
        of undefined length, PS3.5 6.2.2) holds implicit VR little endian items."""
        vr = "UN" if tag >> 16 & 1 else implicit_vr(tag)
        if vr != "SQ" and length != UNDEFINED_LENGTH:
            return vr, pos
        value, pos = _Parser(self.data, IMPLICIT, self.misfits).items(pos, length)
        item[tag] = ("SQ", value)
        return None, pos

    def encapsulated(self, tag: int, vr: str | None, pos: int) -> tuple[Elem, int]:
        """Encapsulated pixel data inside an item (an icon): kept as its bytes."""
        if tag != PIXEL_DATA or vr not in ("OB", "OW"):
            raise DicomFormatError("undefined length outside a sequence")
        start, plain = pos, self.enc.plain.unpack_from
        while True:
            group, element, length = plain(self.data, pos)
            pos += 8
            if group << 16 | element == SEQUENCE_END:
                return (vr, Encapsulated(self.data[start:pos])), pos
            if group << 16 | element != ITEM or pos + length > len(self.data):
                raise DicomFormatError("encapsulated pixel data without its items")
            pos += length

    def items(self, pos: int, length: int) -> tuple[list[Item], int]:
        data, plain = self.data, self.enc.plain
        end = len(data) if length == UNDEFINED_LENGTH else pos + length
        out: list[Item] = []
        while pos < end:
            group, element, item_length = plain.unpack_from(data, pos)
            tag = group << 16 | element
            pos += 8
            if tag == SEQUENCE_END:
                if length != UNDEFINED_LENGTH:
                    raise DicomFormatError("sequence delimiter in a sequence of defined length")
                return out, pos
            if tag != ITEM:
                raise DicomFormatError("expected an item")
            if item_length == UNDEFINED_LENGTH:
                item, after = self.elements(pos, len(data), delimited=True)
                assert after is not None
                pos = after
            else:
                item, _ = self.elements(pos, pos + item_length)
                pos += item_length
            out.append(item)
        if length == UNDEFINED_LENGTH:
            raise IndexError("sequence without its delimiter")
        if pos != end:
            raise DicomFormatError("an item overruns its sequence")
        return out, pos


# -- encoding ----------------------------------------------------------------

def encode_item(item: Item, enc: Encoding) -> bytes:
    """Elements in tag order; sequences and items with defined lengths. A
    value too long for a 16-bit length is written as UN, as pydicom does."""
    parts: list[bytes] = []
    append = parts.append
    implicit, short, long, plain = enc.implicit, enc.short, enc.long, enc.plain
    for tag in sorted(item):
        vr, value = item[tag]
        if type(value) is list:
            value = b"".join(plain.pack(0xFFFE, 0xE000, len(b)) + b
                             for b in [encode_item(i, enc) for i in value])
        length = UNDEFINED_LENGTH if type(value) is Encapsulated else len(value)
        if implicit:
            append(plain.pack(tag >> 16, tag & 0xFFFF, length))
        elif vr in LONG_LENGTH_VRS:
            append(long.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length))
        elif length > 0xFFFF:
            append(long.pack(tag >> 16, tag & 0xFFFF, b"UN", length))
        else:
            append(short.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length))
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


def text_bytes(vr: str, values: list[str], charset: Charset = DEFAULT) -> bytes:
    """String values as an element's bytes, in `charset` (see `Charset.encode`)."""
    return charset.encode(vr, values)


def text_values(elem: Elem, charset: Charset) -> list[str]:
    """The values of a string element, trailing padding removed."""
    return charset.values(elem[0], elem[1])


def header_from_dataset(ds: Dataset) -> Header:
    """A pydicom Dataset as a Header, through the bytes pydicom writes for it:
    where a caller holds a Dataset, this is the one conversion at the edge.
    Elements from the pixel data on are not included."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    implicit, little = ds.original_encoding
    if syntax is not None:
        implicit, little = syntax == ImplicitVRLittleEndian, syntax != ExplicitVRBigEndian
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = bool(implicit), little is not False
    write_dataset(fp, ds[:FIRST_PIXEL_TAG])
    body = fp.getvalue()
    enc = ENCODINGS[(fp.is_implicit_VR, fp.is_little_endian)]
    misfits: list[Misfit] = []
    parsed, _ = parse_dataset(body, 0, enc, misfits=misfits)
    header = Header(None, parsed, enc, charset_in(parsed, DEFAULT),
                    deflated=syntax == DeflatedExplicitVRLittleEndian, misfits=misfits)
    if meta is not None:
        out = DicomBytesIO()
        write_file_meta_info(out, meta, enforce_standard=False)
        header.meta, _ = parse_file_meta(PREAMBLE + out.getvalue())
    return header
