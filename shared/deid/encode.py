"""Encoding a header to bytes, fast where it can be.

Most elements of a de-identified header are still the raw bytes read from
the source, in the source's encoding: those are written as they are, with a
freshly packed element header. Everything else (converted elements,
sequences, undefined lengths) goes through pydicom's writer, which remains
the reference for correctness.
"""

from __future__ import annotations

import struct

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT",
                      "SV", "UV"})
UNDEFINED = 0xFFFFFFFF
META_VERSION = b"\x00\x01"


def encode_dataset(ds: Dataset, implicit: bool, little: bool, charset: object = None) -> bytes:
    """The dataset's elements in tag order, as the body of a Part 10 file."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = little, implicit
    encodings = ds.get("SpecificCharacterSet", charset)
    order = "<" if little else ">"
    get_item = ds.get_item
    for tag in sorted(ds.keys()):
        elem = get_item(tag)
        if (type(elem) is RawDataElement and elem.is_implicit_VR == implicit
                and elem.is_little_endian == little and elem.length != UNDEFINED
                and (elem.value is not None or not elem.length) and (implicit or elem.VR)):
            fp.write(_raw_header(elem, implicit, order) + (elem.value or b""))
        else:
            write_data_element(fp, ds[tag], encodings)
    return fp.getvalue()


def _raw_header(elem: RawDataElement, implicit: bool, order: str) -> bytes:
    tag, length = elem.tag, len(elem.value or b"")
    if implicit:
        return struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, length)
    vr = elem.VR or ""  # explicit VR: the caller checked there is one
    if vr in LONG_VRS:
        return struct.pack(order + "HH2s2xL", tag >> 16, tag & 0xFFFF, vr.encode(), length)
    return struct.pack(order + "HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def encode_file_meta(meta: Dataset) -> bytes:
    """The file meta group (always explicit VR little endian) with its group
    length recomputed; the version is added if missing (PS3.10 7.1)."""
    body = bytearray()
    if 0x00020001 not in meta:
        body += _meta_element(0x00020001, "OB", META_VERSION)
    for tag in sorted(meta.keys()):
        if tag == 0x00020000:
            continue
        elem = meta.get_item(tag)
        if type(elem) is RawDataElement and not elem.is_implicit_VR and elem.VR:
            body += _meta_element(tag, elem.VR, elem.value or b"")
        else:
            body += _meta_element(tag, elem.VR, _meta_value(elem))
    group_length = _meta_element(0x00020000, "UL", struct.pack("<L", len(body)))
    return group_length + bytes(body)


def _meta_element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr in ("UI", "OB") else b" "
    if vr in LONG_VRS:
        head = struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, vr.encode(), len(value))
    else:
        head = struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value))
    return head + value


def _meta_value(elem: DataElement) -> bytes:
    value = elem.value
    if isinstance(value, bytes):
        return value
    if elem.VR == "UL":
        return struct.pack("<L", int(value))
    if elem.VR == "US":
        return struct.pack("<H", int(value))
    return str(value or "").encode("ascii")
