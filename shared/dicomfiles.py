"""Reading the headers of received files, and telling a whole file from a broken one.

pydicom happily returns a dataset for a file cut short inside its pixel data, so
a header read alone cannot be trusted: values longer than a few bytes are left
deferred, and their recorded extents are checked against the file's real size.

A file's size is capped before it is read, and so is what a deflated data set
inflates to: pydicom inflates one whole, in memory, before reading a single
element, so a megabyte of deflated zeros could cost gigabytes. The inflated size
is counted first, in bounded chunks, and a file over the cap is a bad file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from relay_shared.dicom import header as rawheader
from relay_shared.dicom.header import MAX_INFLATED_BYTES
from relay_shared.dicom.vocabulary import (
    ITEM,
    KNOWN_VRS,
    LONG_LENGTH_VRS,
    PIXEL_TAGS,
    SEQUENCE_END,
    SPECIFIC_CHARACTER_SET,
    TRANSFER_SYNTAX,
)
from relay_shared.reasons import RelayError, keep_text

log = logging.getLogger(__name__)

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
# The largest single instance expected: breast tomosynthesis, an enhanced CT or MR of
# a few thousand frames, an ultrasound cine in colour reach 1-1.5 GiB uncompressed; a
# value of defined length cannot pass 4 GiB anyway.
DEFAULT_MAX_INSTANCE_BYTES = 2 * 1024**3
# Deflate is used for reports, structures, presentation states and the odd small
# image; readers (pydicom, here and in deid) inflate the whole data set in memory.
DEFAULT_MAX_INFLATED_BYTES = MAX_INFLATED_BYTES
INFLATE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SizeLimits:
    """RELAY_MAX_INSTANCE_BYTES and RELAY_MAX_INFLATED_BYTES."""

    instance_bytes: int = DEFAULT_MAX_INSTANCE_BYTES
    inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES


DEFAULT_LIMITS = SizeLimits()


class BadDicomFile(RelayError):
    """A file that cannot go on through the pipeline; `reason` says why in fixed words,
    tags and byte counts (a parser's own message can quote the file: never kept)."""


class NotDicomError(BadDicomFile):
    code = "not_dicom"


class TruncatedDicomError(BadDicomFile):
    code = "truncated"


class IncompleteDicomError(BadDicomFile):
    code = "incomplete"


class CorruptDicomError(BadDicomFile):
    code = "corrupt"


class TooLargeError(BadDicomFile):
    pass


TOO_LARGE = "the file is larger than RELAY_MAX_INSTANCE_BYTES"
INFLATES_TOO_LARGE = "the deflated data set inflates beyond RELAY_MAX_INFLATED_BYTES"


# What pydicom raises on values it cannot decode (a bad VR, a length that does not
# fit the VR, bytes that are not the declared character set).
UNREADABLE = (ValueError, KeyError, TypeError, NotImplementedError, struct.error,
              BytesLengthException)


@dataclass(frozen=True)
class InstanceHeader:
    """The few original values ingest needs; they are hashed before they are stored."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    transfer_syntax_uid: str
    modality: str | None
    patient_id: str


def read_header(path: Path, limits: SizeLimits = DEFAULT_LIMITS) -> InstanceHeader:
    return _instance_header(read_checked(path, limits))


# A file up to this size is read once, into memory: its header, the proof that it is
# whole and its digest all come from the same bytes. pydicom's full parse of every
# element (0.4 ms for a 0.5 MB CT slice) and a second read for the hash were most of
# what ingest spent on a file.
RAW_READ_BYTES = 64 * 1024**2
# A file too large to hold is hashed in pieces of this size: bounded memory, and each
# piece is long enough for blake3 to hash it without the GIL.
DIGEST_CHUNK = 1024**2


def read_received(path: Path, limits: SizeLimits = DEFAULT_LIMITS,
                  loaded: tuple[bytes, str] | None = None) -> tuple[InstanceHeader, str]:
    """The header of a received file, proven whole, and the `content_digest` of its bytes.

    Read once by the relay's raw parser when it takes the file (every element parsed,
    every extent checked, the values taken as `read_header` would give them); anything
    it does not take whole, it leaves to `read_header` to accept or refuse, so nothing
    is accepted here that `read_header` would refuse. ``loaded``:
    what `load_whole` gave for this path (read ahead by another thread)."""
    if os.path.getsize(path) > limits.instance_bytes:
        raise TooLargeError(TOO_LARGE)
    if loaded is None:
        loaded = load_whole(path)
    if loaded is not None and len(loaded[0]) <= limits.instance_bytes:
        found = header_of_whole(loaded[0])
        if found is not None:
            return found, loaded[1]
    with open(path, "rb") as stream:
        hasher = blake3()
        while chunk := stream.read(DIGEST_CHUNK):
            hasher.update(chunk)
    return read_header(path, limits), hasher.hexdigest()


def load_whole(path: Path) -> tuple[bytes, str] | None:
    """A file's bytes and their `content_digest`, when it is small enough to hold and does not
    change size as it is read; else None. Reading and hashing release the GIL and
    nothing here parses or touches the warnings filters, so any thread may call it."""
    size = os.path.getsize(path)
    if size > RAW_READ_BYTES:
        return None
    with open(path, "rb") as stream:
        data = stream.read(size + 1)  # a byte more: a file still growing is seen
    if len(data) != size:
        return None
    return data, content_digest(data)


def content_digest(data: bytes) -> str:
    """BLAKE3 of a received file's bytes, in hex: all ingest needs is to tell the same
    file from another, and it costs about a quarter of SHA-256. Single-threaded (blake3's
    default): the read-ahead threads already keep the cores busy. blake3 releases the GIL
    for any input of 2 KiB or more, as hashlib does."""
    return blake3(data).hexdigest()


def legacy_sha256(path: Path) -> str:
    """SHA-256 of a file, in hex: all an image recorded before the content_blake3 column
    holds (content_sha256), so a file received again is compared with it by this."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


_WANTED = {tag: keyword for keyword in (*REQUIRED, "Modality", "PatientID")
           for tag in [int(Tag(keyword))]}


def header_of_whole(data: bytes) -> InstanceHeader | None:
    """The header of a whole Part 10 file's bytes, or None where the raw parser does not
    take the file whole and plainly (deflated, a structure or length it refuses,
    elements after the pixel data it cannot walk to the last byte, a wanted value
    stored under another VR or missing): `read_checked` decides those. Pure."""
    try:
        # Deflated data sets are counted in bounds as they inflate, by `read_checked`.
        syntax = rawheader.parse_file_meta(data)[0].get(TRANSFER_SYNTAX)
        if syntax is None or syntax[1].rstrip(b"\x00 ") == _DEFLATED:
            return None
        parsed = rawheader.parse_file(data, complete=True)
    except Exception:  # the raw parser's refusal is not a verdict: pydicom's read decides
        return None
    if parsed.deflated or parsed.meta is None or TRANSFER_SYNTAX not in parsed.meta \
            or any(item is parsed.body and tag in _WANTED for item, tag, _ in parsed.misfits):
        return None
    if parsed.pixel_offset is not None and not _walks_to_end(data, parsed.pixel_offset,
                                                             parsed.encoding):
        return None
    wanted = {tag: parsed.body[tag] for tag in (*_WANTED, SPECIFIC_CHARACTER_SET)
              if tag in parsed.body}
    if any(type(elem[1]) is list for elem in wanted.values()) or \
            not all(_WANTED_TAGS[k] in wanted for k in REQUIRED):
        return None
    syntax = parsed.meta[TRANSFER_SYNTAX]
    return plain_values(wanted, syntax) or converted(wanted, parsed.encoding, syntax)


def converted(wanted: dict[int, rawheader.Elem], enc: rawheader.Encoding,
              syntax: rawheader.Elem) -> InstanceHeader:
    """The few values ingest keeps, converted by pydicom exactly as `read_header` does
    (character set, padding, its warnings): only their parse is the relay's own."""
    dataset = read_dataset(io.BytesIO(rawheader.encode_item(wanted, enc)),
                           is_implicit_VR=enc.implicit, is_little_endian=enc.little)
    meta = rawheader.encode_item({TRANSFER_SYNTAX: syntax}, rawheader.META)
    dataset.file_meta = FileMetaDataset(read_dataset(io.BytesIO(meta), is_implicit_VR=False,
                                                     is_little_endian=True))
    return _instance_header(dataset)


_DEFLATED = DeflatedExplicitVRLittleEndian.encode()
_WANTED_TAGS = {keyword: tag for tag, keyword in _WANTED.items()}


# Values whose text pydicom gives as their bytes less one pad byte, without a warning:
# a UID within its 64 characters; a code string of capitals, digits, space and
# underscore within 16; a long string of printable ASCII within 64 that starts with
# no space and holds no backslash (a second value). Any other value, and any character
# set but these (in which those bytes are the same characters), goes to pydicom.
_PLAIN = {
    "UI": re.compile(rb"[0-9.]{0,64}"),
    "CS": re.compile(rb"(?:[A-Z0-9_](?:[A-Z0-9_ ]{0,14}[A-Z0-9_])?)?"),
    "LO": re.compile(rb"(?:[\x21-\x5b\x5d-\x7e](?:[\x20-\x5b\x5d-\x7e]{0,62}"
                     rb"[\x21-\x5b\x5d-\x7e])?)?"),
}
_PADS = {"UI": (b"\x00", b" "), "CS": (b" ",), "LO": (b" ",)}
_PLAIN_CHARSETS = frozenset({b"", b"ISO_IR 6", b"ISO_IR 100", b"ISO_IR 192"})


def plain_values(wanted: dict[int, rawheader.Elem], syntax: rawheader.Elem
                 ) -> InstanceHeader | None:
    """The header from values that need no conversion (see `_PLAIN`), or None. Pure."""
    charset = wanted.get(SPECIFIC_CHARACTER_SET)
    if charset is not None and charset[1].rstrip(b" ") not in _PLAIN_CHARSETS:
        return None
    text: dict[str, str] = {}
    for tag, keyword in (*_WANTED.items(), (TRANSFER_SYNTAX, "TransferSyntaxUID")):
        vr, value = syntax if tag == TRANSFER_SYNTAX else wanted.get(tag, ("", b""))
        if not vr:
            text[keyword] = ""
            continue
        if vr not in _PLAIN or type(value) is not bytes:
            return None
        if value[-1:] in _PADS[vr]:
            value = value[:-1]
        if not _PLAIN[vr].fullmatch(value):
            return None
        text[keyword] = value.decode("ascii")
    if not all(text[keyword] for keyword in REQUIRED):
        return None
    return InstanceHeader(
        sop_class_uid=text["SOPClassUID"],
        sop_instance_uid=text["SOPInstanceUID"],
        series_instance_uid=text["SeriesInstanceUID"],
        study_instance_uid=text["StudyInstanceUID"],
        transfer_syntax_uid=text["TransferSyntaxUID"],
        modality=text["Modality"] or None,
        patient_id=text["PatientID"],
    )


def _walks_to_end(data: bytes, pos: int, enc: rawheader.Encoding) -> bool:
    """Whether the elements from the pixel data on end exactly at the last byte, each
    within the file: the pixel data of defined length, or encapsulated items up to
    their delimiter (where pydicom, which looks for the delimiter's bytes, finds it
    too), and any element after it."""
    size = len(data)
    delimiter = struct.pack(enc.order + "HH", 0xFFFE, 0xE0DD)
    try:
        while pos < size:
            if enc.implicit:
                group, element, length = enc.plain.unpack_from(data, pos)
                pos += 8
            else:
                group, element, vr_bytes, length = enc.short.unpack_from(data, pos)
                vr = vr_bytes.decode("ascii", "replace")
                if vr not in KNOWN_VRS:
                    return False
                if vr in LONG_LENGTH_VRS:
                    length = enc.long.unpack_from(data, pos)[3]
                    pos += 12
                else:
                    pos += 8
            tag = group << 16 | element
            if group == 0xFFFE:
                return False
            if length == UNDEFINED_LENGTH:
                if tag not in PIXEL_TAGS:
                    return False
                value = pos
                while True:
                    group, element, length = enc.plain.unpack_from(data, pos)
                    pos += 8
                    if group << 16 | element == SEQUENCE_END:
                        break
                    if group << 16 | element != ITEM or length == UNDEFINED_LENGTH:
                        return False
                    pos += length
                if pos > size or data.find(delimiter, value) != pos - 8 or length != 0:
                    return False
                continue
            pos += length
            if pos > size:
                return False
    except struct.error:
        return False
    return pos == size


def _instance_header(dataset: Dataset) -> InstanceHeader:
    values = {keyword: _value(dataset, keyword)
              for keyword in (*REQUIRED, "Modality", "PatientID")}
    missing = [keyword for keyword in REQUIRED if not values[keyword]]
    if missing:
        raise IncompleteDicomError(f"missing required attribute(s): {', '.join(missing)}")
    return InstanceHeader(
        sop_class_uid=values["SOPClassUID"],
        sop_instance_uid=values["SOPInstanceUID"],
        series_instance_uid=values["SeriesInstanceUID"],
        study_instance_uid=values["StudyInstanceUID"],
        transfer_syntax_uid=str(dataset.file_meta.get("TransferSyntaxUID", "")),
        modality=values["Modality"] or None,
        patient_id=values["PatientID"],
    )


def _value(dataset: Dataset, keyword: str) -> str:
    """One value as text. pydicom converts a value when it is first read, so a corrupt
    one fails (or warns, quoting the value) here: both are reduced to the tag."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = dataset.get(keyword)
            text = "" if value is None else str(value)
        except UNREADABLE as exc:
            keep_text(exc, f"reading {keyword}")
            raise CorruptDicomError(f"unreadable DICOM value in {_tag(keyword)} {keyword}: "
                                    f"{type(exc).__name__}") from None
    if caught:
        log.warning("a header value does not fit its VR",
                    extra={"tag": _tag(keyword), "keyword": keyword, "warnings": len(caught)})
    return text


def _tag(keyword: str) -> str:
    tag = Tag(keyword)
    return f"({tag.group:04X},{tag.element:04X})"




def read_checked(path: Path, limits: SizeLimits = DEFAULT_LIMITS) -> Dataset:
    """Parse every element (bulk values deferred) and prove the file is whole."""
    size = check_size(path, limits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with open(path, "rb") as stream:
                dataset = dcmread(stream, defer_size=1024)
        except InvalidDicomError as exc:
            keep_text(exc, "reading a file")
            raise NotDicomError("not a DICOM Part 10 file") from None
        except zlib.error as exc:
            keep_text(exc, "inflating a file")
            raise TruncatedDicomError("the deflated data set is cut short or corrupt") from None
        except (EOFError, OSError, *UNREADABLE) as exc:
            keep_text(exc, "reading a file")
            raise TruncatedDicomError(f"unreadable DICOM: {type(exc).__name__}") from None
    for warning in caught:
        if "End of file" in str(warning.message) or "delimiter" in str(warning.message):
            keep_text(Warning(warning.message), "reading a file")
            raise TruncatedDicomError("file ends early (a value or delimiter is missing)")
    if "TransferSyntaxUID" not in dataset.file_meta:
        raise NotDicomError("not a DICOM Part 10 file: no transfer syntax in the file meta")
    if dataset.file_meta.TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
        # Offsets in a deflated file count the inflated stream, not the file.
        _check_extents(path, dataset, size)
    return dataset


def check_size(path: Path, limits: SizeLimits) -> int:
    """The file's size, once it and (if deflated) its inflated data set are in bounds."""
    size = os.path.getsize(path)
    if size > limits.instance_bytes:
        raise TooLargeError(TOO_LARGE)
    with open(path, "rb") as stream:
        if _deflated(stream):
            _inflate_within(stream, min(limits.inflated_bytes, limits.instance_bytes))
    return size


def _deflated(stream: BinaryIO) -> bool:
    """Whether the file meta names the deflated syntax; the stream is then at the data set.
    A file meta that does not parse is left for the full read to name."""
    try:
        read_preamble(stream, False)
        meta = _read_file_meta_info(stream)
        return bool(meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian)
    except Exception:  # whatever it is, the full read names it
        return False


def _inflate_within(stream: BinaryIO, limit: int) -> None:
    """Inflate the rest of the stream in bounded chunks, keeping nothing but the count."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = 0
    try:
        while not inflater.eof and (data := stream.read(INFLATE_CHUNK)):
            while data and not inflater.eof:
                inflated += len(inflater.decompress(data, INFLATE_CHUNK))
                if inflated > limit:
                    raise TooLargeError(INFLATES_TOO_LARGE)
                data = inflater.unconsumed_tail
    except zlib.error:
        raise TruncatedDicomError("the deflated data set is cut short or corrupt") from None
    if not inflater.eof:
        raise TruncatedDicomError("the deflated data set is cut short or corrupt")


def _check_extents(path: Path, dataset: Dataset, size: int) -> None:
    for tag, raw in dataset._dict.items():
        if not isinstance(raw, RawDataElement):
            continue
        if raw.length == UNDEFINED_LENGTH:
            if tag != PIXEL_DATA:
                continue  # sequences are parsed whole, and a cut one fails to parse
            end = _encapsulated_end(path, raw.value_tell, size)
        else:
            end = raw.value_tell + raw.length
        if end > size:
            raise TruncatedDicomError(
                f"file ends early: element {tag} needs {end} bytes, the file has {size}"
            )


def _encapsulated_end(path: Path, start: int, size: int) -> int:
    """Walk the item headers of an undefined-length value (seeking over their
    contents) to where its sequence delimiter ends; past ``size`` if it is missing."""
    with open(path, "rb") as stream:
        position = start
        while position + 8 <= size:
            stream.seek(position)
            group, element, length = struct.unpack("<HHL", stream.read(8))
            position += 8
            if (group, element) == (0xFFFE, 0xE0DD):
                return position
            if (group, element) != (0xFFFE, 0xE000) or length == UNDEFINED_LENGTH:
                raise TruncatedDicomError("encapsulated pixel data is malformed: an item "
                                          f"header is wrong at byte {position - 8}")
            position += length
        return size + 8
