"""Reading the headers of received files, and telling a whole file from a broken one.

pydicom happily returns a dataset for a file cut short inside its pixel data, so
a header read alone cannot be trusted: values longer than a few bytes are left
deferred, and their recorded extents are checked against the file's real size.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from relay_shared.reasons import RelayError, keep_text

log = logging.getLogger(__name__)

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


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


def read_header(path: Path) -> InstanceHeader:
    dataset = read_checked(path)
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


def read_checked(path: Path) -> Dataset:
    """Parse every element (bulk values deferred) and prove the file is whole."""
    size = os.path.getsize(path)
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
