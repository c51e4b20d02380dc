"""Datasets with a known value planted in every attribute of the table."""

from __future__ import annotations

import re
from io import BytesIO

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from relay_shared.deid import Pseudonymizer
from relay_shared.deid.table import entries

SECRET = b"test-secret-0123456789"
PSEUDO = Pseudonymizer(SECRET, key_id="test")


def planted_value(tag: int, vr: str) -> object:
    """A value of the VR that names its attribute, so a survivor is traceable."""
    text = f"V{tag:08X}"
    by_vr: dict[str, object] = {
        "PN": f"{text}^PLANTED", "DA": "20010203", "DT": "20010203040506",
        "TM": "040506", "UI": f"1.2.999.{tag}", "AS": "045Y", "DS": "12.5", "IS": "42",
        "US": 7, "SS": 7, "UL": 7, "SL": 7, "UV": 7, "SV": 7, "FL": 1.5, "FD": 1.5,
        "OB": b"\x01\x02", "OW": b"\x01\x02", "UN": b"\x01\x02", "OF": b"\x00\x00\xc0\x3f",
        "OD": b"\x00" * 8, "OL": b"\x01\x00\x00\x00", "OV": b"\x00" * 8,
        "AT": 0x00100010, "UR": f"http://example.org/{text}",
    }
    return by_vr.get(vr, text)


def vr_of(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


def planted_tags() -> dict[int, str]:
    out = {}
    for tag in entries():
        vr = vr_of(tag)
        # Groups 0000 (commands) and 0002 (file meta) never sit in a stored
        # dataset; the file meta has its own tests.
        if vr is not None and tag >> 16 not in (0x0000, 0x0002):
            out[tag] = vr
    return out


def planted_dataset() -> Dataset:
    ds = Dataset()
    for tag, vr in planted_tags().items():
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = "PLANTED"
            ds.add_new(tag, vr, Sequence([item]))
        else:
            ds.add_new(tag, vr, planted_value(tag, vr))
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = planted_value(0x00080018, "UI")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def reread(ds: Dataset) -> Dataset:
    """The dataset as the service sees it: parsed from bytes, elements raw."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer, stop_before_pixels=True)


# -- the "wrong VR" class: the same planted values under VRs the dictionary does not give


def planted_wrong_vr_file() -> bytes:
    """`planted_dataset` as a Part 10 file in which every text element of the
    top level is written under a wrong explicit VR, in turn through every VR
    there is but SQ (a text read as items is refused whole, which the
    property tests cover): UIDs as LO or US, dates as UT or OB, names as FD..."""
    from relay_shared.dicom.header import (
        ENCODINGS,
        PREAMBLE,
        encode_item,
        encode_meta,
        header_from_dataset,
    )
    from relay_shared.dicom.vocabulary import KNOWN_VRS, STRING_VRS

    header = header_from_dataset(reread(planted_dataset()))
    wrong = sorted(KNOWN_VRS - {"SQ"})
    for n, (tag, (vr, value)) in enumerate(sorted(header.body.items())):
        if vr in STRING_VRS:
            choices = [w for w in wrong if w != vr]
            header.body[tag] = (choices[n % len(choices)], value)
    assert header.meta is not None
    return PREAMBLE + encode_meta(header.meta) + encode_item(header.body,
                                                             ENCODINGS[(False, True)])


def planted_left(data: bytes) -> list[str]:
    """What of the planted values an output still holds: the marks of the
    text values, the planted UIDs, dates and times (none of them can occur in
    a pseudonym, a minted UID or a dummy by chance, times aside: those are
    compared as whole values)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import dcmread as read

    text = data.decode("latin-1")
    left = sorted(set(re.findall(r"V[0-9A-F]{8}", text)))
    left += ["a planted UID"] * ("1.2.999." in text)
    left += ["the planted date"] * ("20010203" in text)
    try:
        ds = read(DicomBytesIO(data))
        left += [f"{e.tag} time" for e in ds.iterall() if e.VR == "TM" and e.value == "040506"]
    except Exception as exc:  # an output pydicom cannot read is a defect of its own
        left.append(f"an output pydicom cannot read ({type(exc).__name__})")
    return left
