"""A Google Cloud Storage bucket: DICOM files or one NIfTI volume per series, with a sidecar.

Objects of a series live under one stable prefix,
``<prefix>/<patient pseudonym>/<study uid>/<series uid>/``: ``<sop uid>.dcm`` each,
or ``series.nii.gz``, and always ``series.json`` (the configured metadata subset).
Every name is made of de-identified values only.

A repeated send never overwrites: what a listing shows with the same checksum is
skipped, and each upload carries ``if_generation_match=0`` so that an object that
appeared in between fails the precondition instead of being replaced; it is then
compared by checksum. Receipt is proved by listing the series' prefix.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

import google_crc32c
import requests
from google.api_core import exceptions as google_errors
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from pydicom import dcmread
from pydicom.multival import MultiValue
from sqlalchemy.engine import Engine
from sqlmodel import select

from relay_sender.destinations import DestinationError, OutgoingSeries, checked_uid
from relay_sender.nifti import NotAVolume, to_volume
from relay_shared.db import record_event, session_scope
from relay_shared.models import SeriesMetadata, utcnow
from relay_shared.settings import GcsFormat

log = logging.getLogger(__name__)
VOLUME, SIDECAR = "series.nii.gz", "series.json"
INSTANCES_DIGEST = "relay-instances-sha256"
UPLOAD_THREADS = 8
EMULATOR_PROJECT = "relay-emulator"


def make_client(endpoint: str | None) -> storage.Client:
    """Google's own credential lookup, or none at all for an emulator's endpoint."""
    try:
        if endpoint:
            return storage.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials(),
                                  client_options={"api_endpoint": endpoint.rstrip("/")})
        return storage.Client()
    except auth_errors.GoogleAuthError as exc:
        raise DestinationError(f"gcs: no usable Google credentials ({type(exc).__name__}); "
                               "set GOOGLE_APPLICATION_CREDENTIALS or use workload "
                               "identity") from None


@contextlib.contextmanager
def google_calls(what: str) -> Iterator[None]:
    """Any failure of the bucket or the network becomes a retryable DestinationError."""
    try:
        yield
    except (google_errors.GoogleAPIError, auth_errors.GoogleAuthError,
            requests.RequestException) as exc:
        raise DestinationError(f"gcs {what} failed: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class Checksums:
    md5: str
    crc32c: str

    @classmethod
    def of(cls, content: bytes) -> Checksums:
        crc = google_crc32c.Checksum(content).digest()
        return cls(base64.b64encode(hashlib.md5(content).digest()).decode(),
                   base64.b64encode(crc).decode())

    def match(self, blob: storage.Blob) -> bool:
        if blob.md5_hash:
            return bool(blob.md5_hash == self.md5)
        return bool(blob.crc32c == self.crc32c)  # composite objects carry no MD5


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes
    content_type: str
    metadata: dict[str, str] | None = None


class GcsDestination:
    name = "gcs"

    @property
    def sends_whole_series(self) -> bool:
        """A NIfTI volume is built from the whole series, never from the images an
        earlier attempt left unconfirmed."""
        return self._format is GcsFormat.NIFTI

    def __init__(self, client: storage.Client, bucket: str, prefix: str = "",
                 fmt: GcsFormat = GcsFormat.DICOM, fields: Sequence[str] = (),
                 engine: Engine | None = None, timeout: float = 60.0) -> None:
        self._client = client
        self._bucket = client.bucket(bucket)
        self._prefix = prefix.strip("/")
        self._format = fmt
        self._fields = list(fields)
        self._engine = engine
        self._timeout = timeout
        # Google's retries are bounded by the same time as one call, not two minutes: the
        # relay's own retries with their growing delay take over from there. Every call
        # here may be retried: uploads carry a generation precondition.
        self._retry = DEFAULT_RETRY.with_timeout(timeout)

    def series_prefix(self, series: OutgoingSeries) -> str:
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
            record_metadata(self._engine, series.series_id, f"gs://{self._bucket.name}/{base}",
                           fmt.value, reason, fields)

    def _send_volume(self, series: OutgoingSeries, base: str,
                     listed: dict[str, storage.Blob]) -> str | None:
        """Upload the series as one volume; the reason it cannot be one, if it cannot."""
        try:
            volume = to_volume([i.path for i in series.instances])
        except NotAVolume as exc:
            log.info("series sent as DICOM, not a volume",
                     extra={"series_id": series.series_id, "reason": str(exc)})
            return str(exc)
        self._put(Upload(base + VOLUME, volume.content, "application/gzip",
                         {INSTANCES_DIGEST: instances_digest(series)}), listed)
        return None

    def _send_files(self, series: OutgoingSeries, base: str,
                    listed: dict[str, storage.Blob]) -> None:
        def one(instance_index: int) -> None:
            instance = series.instances[instance_index]
            self._put(Upload(f"{base}{checked_uid(instance.sop_instance_uid)}.dcm",
                             instance.path.read_bytes(), "application/dicom"), listed)

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(one, range(len(series.instances))):
                pass

    def _put(self, upload: Upload, listed: dict[str, storage.Blob]) -> None:
        sums = Checksums.of(upload.content)
        existing = listed.get(upload.name)
        if existing is not None:
            self._same_or_refuse(upload.name, existing, sums)
            return
        blob = self._bucket.blob(upload.name)
        blob.metadata = upload.metadata
        with google_calls("upload"):
            try:
                blob.upload_from_string(upload.content, content_type=upload.content_type,
                                        if_generation_match=0, timeout=self._timeout,
                                        retry=self._retry)
                return
            except google_errors.PreconditionFailed:
                # Stored since the listing: by a retried request of ours, or by another.
                current = self._bucket.get_blob(upload.name, timeout=self._timeout,
                                                retry=self._retry)
        if current is None:
            raise DestinationError(f"gcs refused {upload.name} as existing, then did not "
                                   "show it")
        self._same_or_refuse(upload.name, current, sums)

    def _same_or_refuse(self, name: str, blob: storage.Blob, sums: Checksums) -> None:
        if not sums.match(blob):
            # Never replaced: the bucket keeps what it was first given.
            raise DestinationError(f"gcs already holds different content at {name}; "
                                   "it is left as it is")

    def _list(self, base: str) -> dict[str, storage.Blob]:
        with google_calls("listing"):
            return {blob.name: blob for blob in self._client.list_blobs(
                self._bucket, prefix=base, timeout=self._timeout, retry=self._retry)}

    def missing(self, series: OutgoingSeries) -> set[str]:
        """What the listing does not show. A volume holds all instances or none, and the
        sidecar belongs to each of them."""
        base = self.series_prefix(series)
        listed = self._list(base)
        everything = {i.sop_instance_uid for i in series.instances}
        if base + SIDECAR not in listed:
            return everything
        volume = listed.get(base + VOLUME)
        if volume is not None and (volume.metadata or {}).get(INSTANCES_DIGEST) == \
                instances_digest(series):
            return set()
        held = {i.sop_instance_uid for i in series.instances
                if _held(listed.get(f"{base}{i.sop_instance_uid}.dcm"), i.path.read_bytes())}
        if self._format is GcsFormat.NIFTI and held != everything:
            return everything  # a subset could make a volume of its own: resend the whole
        return everything - held

    def close(self) -> None:
        self._client.close()


def _held(blob: storage.Blob | None, content: bytes) -> bool:
    return blob is not None and Checksums.of(content).match(blob)


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
                    reason: str | None, fields: dict[str, object]) -> None:
    """The searchable row of the series, from its sidecar: a resend rewrites the same row."""
    with session_scope(engine) as session:
        row = session.exec(select(SeriesMetadata).where(
            SeriesMetadata.series_id == series_id)).first() or SeriesMetadata(
                series_id=series_id, location=location, format=fmt)
        if reason is not None and row.fallback_reason != reason:
            record_event(session, series_id, "sender", "gcs-as-dicom", reason)
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
