"""What the bucket destinations (GCS, S3) share: the layout, the formats, the sidecar
and the searchable row, and the order in which a series is stored and checked.

Objects of a series live under one stable prefix,
``<prefix>/<patient pseudonym>/<study uid>/<series uid>/``: ``<sop uid>.dcm`` each,
or ``series.nii.gz``, and always ``series.json`` (the configured metadata subset).
Every name is made of de-identified values only. A subclass stores one object
(``_put``), lists a prefix (``_list``) and says whether a listed object holds given
content (``_holds``); what is stored where, and when a series counts as held, is
decided here once for every kind of bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.multival import MultiValue
from sqlalchemy.engine import Engine
from sqlmodel import select

from relay_sender.destinations import OutgoingSeries, checked_uid
from relay_sender.nifti import NotAVolume, to_volume
from relay_shared.db import record_event, session_scope
from relay_shared.manifest import ObjectSent
from relay_shared.models import SeriesMetadata, utcnow
from relay_shared.settings import GcsFormat

log = logging.getLogger(__name__)
VOLUME, SIDECAR = "series.nii.gz", "series.json"
INSTANCES_DIGEST = "relay-instances-sha256"
# The volume's own bytes, for the series' signed manifest (relay_shared.manifest).
VOLUME_SHA256, VOLUME_BYTES = "relay-volume-sha256", "relay-volume-bytes"
UPLOAD_THREADS = 8


@dataclass(frozen=True)
class Upload:
    name: str
    # Bytes built here (a volume, a sidecar), or the path of a file sent as it is.
    body: bytes | Path
    content_type: str
    metadata: dict[str, str] | None = None

    @property
    def content(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else self.body.read_bytes()


class ObjectStoreDestination(ABC):
    """A series into a bucket, as DICOM files or one NIfTI volume, with its sidecar."""

    name: str
    scheme: str  # of the location kept in the searchable row: gs://, s3://

    def __init__(self, bucket: str, prefix: str, fmt: GcsFormat, fields: Sequence[str],
                 engine: Engine | None) -> None:
        self._bucket_name = bucket
        self._prefix = prefix.strip("/")
        self._format = fmt
        self._fields = list(fields)
        self._engine = engine

    @property
    def sends_whole_series(self) -> bool:
        """A NIfTI volume is built from the whole series, never from the images an
        earlier attempt left unconfirmed."""
        return self._format is GcsFormat.NIFTI

    @abstractmethod
    def _put(self, upload: Upload, listed: Mapping[str, Any]) -> None:
        """Store one object, unless the listing shows it there with the same content."""

    @abstractmethod
    def _list(self, base: str) -> Mapping[str, Any]:
        """Object name -> what the store tells of it, for every object under base."""

    @abstractmethod
    def _holds(self, name: str, listed: Any, path: Path) -> bool:
        """Whether the listed object (None: not listed) holds the file's content."""

    @abstractmethod
    def _metadata(self, name: str, listed: Any) -> dict[str, str]:
        """The custom metadata of a listed object."""

    def series_prefix(self, series: OutgoingSeries) -> str:
        """Where the series goes; every UID that will name an object is checked
        first, so a value that is not a UID is refused before any request."""
        for instance in series.instances:
            checked_uid(instance.sop_instance_uid)
        header = dcmread(series.instances[0].path, stop_before_pixels=True,
                         specific_tags=["PatientID"])
        parts = [self._prefix, safe_part(str(header.get("PatientID") or "")),
                 checked_uid(series.study_instance_uid), checked_uid(series.series_instance_uid)]
        return "/".join(part for part in parts if part) + "/"

    def send(self, series: OutgoingSeries) -> None:
        base = self.series_prefix(series)
        listed = self._list(base)
        fmt, reason = GcsFormat.DICOM, None
        if self._format is GcsFormat.NIFTI:
            reason = self._send_volume(series, base, listed)
            fmt = GcsFormat.NIFTI if reason is None else GcsFormat.DICOM
        if fmt is GcsFormat.DICOM:
            self._send_files(series, base, listed)
        fields = sidecar(dcmread(series.instances[0].path, stop_before_pixels=True),
                         self._fields)
        marks = {"relay-format": fmt.value, **({"relay-fallback": reason} if reason else {})}
        self._put(Upload(base + SIDECAR, sidecar_bytes(fields), "application/json", marks),
                  listed)
        if self._engine is not None:
            record_metadata(self._engine, series.series_id,
                            f"{self.scheme}://{self._bucket_name}/{base}", fmt.value, reason,
                            fields, self.name)

    def _send_volume(self, series: OutgoingSeries, base: str,
                     listed: Mapping[str, Any]) -> str | None:
        """Upload the series as one volume; the reason it cannot be one, if it cannot."""
        try:
            volume = to_volume([i.path for i in series.instances])
        except NotAVolume as exc:
            log.info("series sent as DICOM, not a volume",
                     extra={"series_id": series.series_id, "reason": exc.reason})
            return exc.reason
        self._put(Upload(base + VOLUME, volume.content, "application/gzip",
                         {INSTANCES_DIGEST: instances_digest(series),
                          VOLUME_SHA256: hashlib.sha256(volume.content).hexdigest(),
                          VOLUME_BYTES: str(len(volume.content))}), listed)
        return None

    def sent_objects(self, series: OutgoingSeries) -> tuple[ObjectSent, ...]:
        """What the bucket holds of the series in place of its DICOM files: the volume
        made of every instance, when the series went as one."""
        if self._format is not GcsFormat.NIFTI:
            return ()
        base = self.series_prefix(series)
        metadata = self._volume_of(series, base, self._list(base))
        if metadata is None or not metadata.get(VOLUME_SHA256) \
                or not metadata.get(VOLUME_BYTES, "").isdigit():
            return ()
        return (ObjectSent(VOLUME, int(metadata[VOLUME_BYTES]), metadata[VOLUME_SHA256],
                           len(series.instances)),)

    def _volume_of(self, series: OutgoingSeries, base: str, listed: Mapping[str, Any]
                   ) -> dict[str, str] | None:
        """The metadata of the series' volume, when the bucket holds one made of exactly
        these instances."""
        volume = listed.get(base + VOLUME)
        if volume is None:
            return None
        metadata = self._metadata(base + VOLUME, volume)
        return metadata if metadata.get(INSTANCES_DIGEST) == instances_digest(series) else None

    def _send_files(self, series: OutgoingSeries, base: str,
                    listed: Mapping[str, Any]) -> None:
        def one(instance_index: int) -> None:
            instance = series.instances[instance_index]
            self._put(Upload(f"{base}{checked_uid(instance.sop_instance_uid)}.dcm", instance.path,
                             "application/dicom"), listed)

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(one, range(len(series.instances))):
                pass

    def put_manifest(self, series: OutgoingSeries, name: str, content: bytes) -> str:
        """An object beside the series' own (its signed manifest); never overwritten: the
        same content again is skipped, other content is refused."""
        base = self.series_prefix(series)
        self._put(Upload(base + name, content, "application/json"), self._list(base))
        return f"{self.scheme}://{self._bucket_name}/{base}{name}"

    def missing(self, series: OutgoingSeries) -> set[str]:
        """What the store does not show holding. A volume holds all instances or none,
        and the sidecar belongs to each of them."""
        base = self.series_prefix(series)
        listed = self._list(base)
        everything = {i.sop_instance_uid for i in series.instances}
        if base + SIDECAR not in listed:
            return everything
        if self._volume_of(series, base, listed) is not None:
            return set()

        def held(instance_index: int) -> bool:
            instance = series.instances[instance_index]
            name = f"{base}{checked_uid(instance.sop_instance_uid)}.dcm"
            return self._holds(name, listed.get(name), instance.path)

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            answers = list(pool.map(held, range(len(series.instances))))
        holding = {i.sop_instance_uid for i, yes in zip(series.instances, answers, strict=True)
                   if yes}
        if self._format is GcsFormat.NIFTI and holding != everything:
            return everything  # a subset could make a volume of its own: resend the whole
        return everything - holding


def instances_digest(series: OutgoingSeries) -> str:
    """Which instances a volume was made of, without listing them in its metadata."""
    uids = "\n".join(sorted(i.sop_instance_uid for i in series.instances))
    return hashlib.sha256(uids.encode()).hexdigest()


def safe_part(value: str) -> str:
    """One path segment: the characters of a pseudonym, nothing that nests or escapes."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value).strip(".")
    return cleaned or "unknown-patient"


def sidecar(header: object, fields: Sequence[str]) -> dict[str, object]:
    """The configured attributes of a de-identified header, as JSON values (None if absent)."""
    return {keyword: _plain(getattr(header, keyword, None)) for keyword in fields}


def sidecar_bytes(fields: dict[str, object]) -> bytes:
    # Sorted keys: the same subset always gives the same bytes and checksum.
    return json.dumps(fields, sort_keys=True, indent=2).encode() + b"\n"


def _plain(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple | MultiValue):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float):
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, bytes):
        return None  # binary values are not metadata a researcher searches
    return str(value)


def record_metadata(engine: Engine, series_id: int, location: str, fmt: str,
                    reason: str | None, fields: dict[str, object],
                    destination: str = "gcs") -> None:
    """The searchable row of the series, from its sidecar: a resend rewrites the same row."""
    with session_scope(engine) as session:
        row = session.exec(select(SeriesMetadata).where(
            SeriesMetadata.series_id == series_id)).first() or SeriesMetadata(
                series_id=series_id, location=location, format=fmt)
        if reason is not None and row.fallback_reason != reason:
            record_event(session, series_id, "sender", f"{destination}-as-dicom", reason)
        row.location, row.format, row.fallback_reason = location, fmt, reason
        row.modality = _text(fields.get("Modality"), 16)
        row.body_part = _text(fields.get("BodyPartExamined"), 64)
        row.series_description = _text(fields.get("SeriesDescription"), 64)
        row.patient_pseudonym = _text(fields.get("PatientID"), 64)
        row.study_uid = _text(fields.get("StudyInstanceUID"), 64)
        row.series_uid = _text(fields.get("SeriesInstanceUID"), 64)
        row.study_date = _date(fields.get("StudyDate"))
        thickness = fields.get("SliceThickness")
        row.slice_thickness = float(thickness) if isinstance(thickness, int | float) else None
        row.fields, row.updated_at = fields, utcnow()
        session.add(row)


def _text(value: object, length: int) -> str | None:
    return None if value is None else str(value)[:length]


def _date(value: object) -> date | None:
    try:
        return datetime.strptime(str(value), "%Y%m%d").date() if value else None
    except ValueError:
        return None
