"""An S3 bucket, or an S3-compatible store (MinIO, Ceph): the layouts and formats of the
GCS destination (objectstore.py), every object verified after its upload.

Uploads go through boto3's transfer manager: one PUT below the multipart threshold,
parts above it, each request carrying a SHA-256 the store checks on receipt. Then
HeadObject must show the size and the checksum computed here from the content: the
SHA-256 of the whole object, or for a multipart one the SHA-256 of its parts' digests
and their count, as S3 computes it. A store that keeps no SHA-256 is checked by its
ETag, the MD5 in the same two forms. Receipt is proved the same way, object by object,
before any clean-up (a volume or sidecar, built here, right after its upload). A
repeated send never overwrites: an object listed with the same content is skipped,
one with other content is refused and left as it is. Uploads are not conditional
(If-None-Match is not honoured by every S3-compatible store): the listing made just
before decides, and the series lock keeps two senders off one series.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from s3transfer.utils import ChunksizeAdjuster
from sqlalchemy.engine import Engine

from relay_sender.destinations import DestinationError
from relay_sender.objectstore import UPLOAD_THREADS, ObjectStoreDestination, Upload
from relay_shared.settings import GcsFormat, Settings

MIB = 1024 * 1024
MULTIPART_THRESHOLD = 16 * MIB
PART_SIZE = 16 * MIB
READ_CHUNK = MIB


def make_client(region: str | None = None, endpoint: str | None = None,
                access_key_id: str | None = None, secret_access_key: str | None = None,
                timeout: float = 60.0, verify: bool | str = True) -> Any:
    """Keys when given, else the AWS credential chain; path-style addressing for a
    store at its own endpoint, which MinIO and Ceph answer without wildcard DNS."""
    config = Config(region_name=region, connect_timeout=timeout, read_timeout=timeout,
                    retries={"mode": "standard", "max_attempts": 3},
                    max_pool_connections=UPLOAD_THREADS * 3,
                    s3={"addressing_style": "path"} if endpoint else None)
    session = boto3.session.Session(aws_access_key_id=access_key_id,
                                    aws_secret_access_key=secret_access_key)
    return session.client("s3", endpoint_url=endpoint, config=config, verify=verify)


@contextlib.contextmanager
def s3_calls(what: str) -> Iterator[None]:
    """Any failure of the store or the network becomes a retryable DestinationError that
    names the store's error code, never its message."""
    try:
        yield
    except NoCredentialsError:
        raise DestinationError("s3: no credentials; set RELAY_S3_ACCESS_KEY_ID and "
                               "RELAY_S3_SECRET_ACCESS_KEY, or an AWS credential "
                               "source (environment, profile, instance role)") from None
    except ClientError as exc:
        raise DestinationError(f"s3 {what} failed: {error_code(exc)}") from exc
    except S3UploadFailedError as exc:
        cause = exc.__cause__ or exc.__context__
        code = error_code(cause) if isinstance(cause, ClientError) else type(exc).__name__
        raise DestinationError(f"s3 {what} failed: {code}") from exc
    except BotoCoreError as exc:
        raise DestinationError(f"s3 {what} failed: {type(exc).__name__}") from exc


def error_code(exc: ClientError) -> str:
    code = str(exc.response.get("Error", {}).get("Code") or "unknown")
    return re.sub(r"[^A-Za-z0-9.]", "", code)[:64] or "unknown"


@dataclass(frozen=True)
class Expected:
    """Size and checksums of content, in the forms HeadObject reports them: of the whole
    object, and (content uploaded in parts) of its parts, with their count."""

    size: int
    sha256: str  # base64
    md5: str  # hex, as in an ETag
    parts_sha256: str | None = None  # "<base64>-<parts>"
    parts_md5: str | None = None  # "<hex>-<parts>"

    def seen_in(self, head: Mapping[str, Any]) -> bool:
        if int(head.get("ContentLength", -1)) != self.size:
            return False
        stored = str(head.get("ChecksumSHA256") or "")
        if stored:
            # A composite checksum may be reported with or without its part count.
            return stored in (self.sha256, self.parts_sha256) or (
                self.parts_sha256 is not None and stored == self.parts_sha256.split("-")[0])
        # Without a SHA-256 the ETag of an unencrypted object is its MD5, per part if it
        # came in parts (S3, MinIO, Ceph alike).
        return str(head.get("ETag", "")).strip('"') in (self.md5, self.parts_md5)


def expected_of(body: bytes | Path, threshold: int, part_size: int) -> Expected:
    """What the store reports for this content, stored whole or in these parts."""
    size = len(body) if isinstance(body, bytes) else body.stat().st_size
    in_parts = size >= threshold
    # The transfer manager adjusts the part size the same way (S3's 10,000-part limit).
    part = ChunksizeAdjuster().adjust_chunksize(part_size, size) if in_parts else READ_CHUNK
    whole_sha, whole_md5 = hashlib.sha256(), hashlib.md5()
    sha_parts, md5_parts = [], []
    for chunk in _chunks(body, part):
        whole_sha.update(chunk)
        whole_md5.update(chunk)
        if in_parts:
            sha_parts.append(hashlib.sha256(chunk).digest())
            md5_parts.append(hashlib.md5(chunk).digest())
    expected = Expected(size, base64.b64encode(whole_sha.digest()).decode(),
                        whole_md5.hexdigest())
    if not in_parts:
        return expected
    count = len(sha_parts)
    composite = base64.b64encode(hashlib.sha256(b"".join(sha_parts)).digest()).decode()
    return replace(expected, parts_sha256=f"{composite}-{count}",
                   parts_md5=f"{hashlib.md5(b''.join(md5_parts)).hexdigest()}-{count}")


def _chunks(body: bytes | Path, size: int) -> Iterator[bytes]:
    with (io.BytesIO(body) if isinstance(body, bytes) else body.open("rb")) as stream:
        while chunk := stream.read(size):
            yield chunk


class S3Destination(ObjectStoreDestination):
    name = "s3"
    scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, region: str | None = None,
                 endpoint: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, fmt: GcsFormat = GcsFormat.DICOM,
                 fields: Sequence[str] = (), engine: Engine | None = None,
                 timeout: float = 60.0, verify: bool | str = True,
                 multipart_threshold: int = MULTIPART_THRESHOLD,
                 part_size: int = PART_SIZE) -> None:
        super().__init__(bucket, prefix, fmt, fields, engine)
        self._client = make_client(region, endpoint, access_key_id, secret_access_key,
                                   timeout, verify)
        self._threshold, self._part_size = multipart_threshold, part_size
        self._transfers = create_transfer_manager(self._client, TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=part_size,
            max_concurrency=UPLOAD_THREADS * 2, preferred_transfer_client="classic"))

    def _put(self, upload: Upload, listed: Mapping[str, Any]) -> None:
        expected = expected_of(upload.body, self._threshold, self._part_size)
        if upload.name in listed:
            if not self._verified(upload.name, expected):
                # Never replaced: the bucket keeps what it was first given.
                raise DestinationError(f"s3 already holds different content at "
                                       f"{upload.name}; it is left as it is")
            return
        extra: dict[str, Any] = {"ContentType": upload.content_type,
                                 "ChecksumAlgorithm": "SHA256"}
        if upload.metadata:
            extra["Metadata"] = upload.metadata
        source = str(upload.body) if isinstance(upload.body, Path) else io.BytesIO(upload.body)
        with s3_calls("upload"):
            self._transfers.upload(source, self._bucket_name, upload.name,
                                   extra_args=extra).result()
        # A file is checked by missing(), which the sender asks before any clean-up; what
        # is built here (a volume, a sidecar) is checked now, while its content is known.
        if isinstance(upload.body, bytes) and not self._verified(upload.name, expected):
            raise DestinationError(f"s3 does not show {upload.name} as uploaded: its size "
                                   "or checksum differs")

    def _verified(self, name: str, expected: Expected) -> bool:
        head = self._head(name)
        return head is not None and expected.seen_in(head)

    def _head(self, name: str) -> dict[str, Any] | None:
        with s3_calls("check"):
            try:
                return dict(self._client.head_object(Bucket=self._bucket_name, Key=name,
                                                     ChecksumMode="ENABLED"))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return None
                raise

    def _list(self, base: str) -> dict[str, Any]:
        listed: dict[str, Any] = {}
        with s3_calls("listing"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket_name, Prefix=base)
            for page in pages:
                listed.update({item["Key"]: item for item in page.get("Contents", [])})
        return listed

    def _holds(self, name: str, listed: Any, path: Path) -> bool:
        if listed is None or int(listed.get("Size", -1)) != path.stat().st_size:
            return False
        return self._verified(name, expected_of(path, self._threshold, self._part_size))

    def _metadata(self, name: str, listed: Any) -> dict[str, str]:
        head = self._head(name)
        return dict(head.get("Metadata") or {}) if head else {}

    def close(self) -> None:
        self._transfers.shutdown()
        self._client.close()


def s3_verify(settings: Settings) -> bool | str:
    """botocore's `verify`: off, the CA bundle the relay is told to trust, or the system's."""
    if not settings.tls_verify:
        return False
    return str(settings.tls_ca_bundle) if settings.tls_ca_bundle else True
