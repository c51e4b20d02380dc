"""A Google Cloud Storage bucket: DICOM files or one NIfTI volume per series, with a sidecar
(layout and formats: objectstore.py).

A repeated send never overwrites: what a listing shows with the same checksum is
skipped, and each upload carries ``if_generation_match=0`` so that an object that
appeared in between fails the precondition instead of being replaced; it is then
compared by checksum. Receipt is proved by listing the series' prefix.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import requests
from google.api_core import exceptions as google_errors
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from sqlalchemy.engine import Engine

from relay_sender.destinations import DestinationError
from relay_sender.objectstore import ObjectStoreDestination, Upload
from relay_shared.settings import GcsFormat

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


class GcsDestination(ObjectStoreDestination):
    name = "gcs"
    scheme = "gs"

    def __init__(self, client: storage.Client, bucket: str, prefix: str = "",
                 fmt: GcsFormat = GcsFormat.DICOM, fields: Sequence[str] = (),
                 engine: Engine | None = None, timeout: float = 60.0) -> None:
        super().__init__(bucket, prefix, fmt, fields, engine)
        self._client = client
        self._bucket = client.bucket(bucket)
        self._timeout = timeout
        # Google's retries are bounded by the same time as one call, not two minutes: the
        # relay's own retries with their growing delay take over from there. Every call
        # here may be retried: uploads carry a generation precondition.
        self._retry = DEFAULT_RETRY.with_timeout(timeout)

    def _put(self, upload: Upload, listed: Mapping[str, storage.Blob]) -> None:
        content = upload.content
        sums = Checksums.of(content)
        existing = listed.get(upload.name)
        if existing is not None:
            self._same_or_refuse(upload.name, existing, sums)
            return
        blob = self._bucket.blob(upload.name)
        blob.metadata = upload.metadata
        with google_calls("upload"):
            try:
                blob.upload_from_string(content, content_type=upload.content_type,
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

    def _holds(self, name: str, listed: storage.Blob | None, path: Path) -> bool:
        return listed is not None and Checksums.of(path.read_bytes()).match(listed)

    def _metadata(self, name: str, listed: storage.Blob) -> dict[str, str]:
        return dict(listed.metadata or {})

    def close(self) -> None:
        self._client.close()

