"""The signed manifest of a series, made once every destination has proved it holds it.

It is stored in the database first (the API serves it for Orthanc, DICOM and DICOMweb
destinations), then placed beside the data where a destination holds files: the
outbox folder, a GCS or S3 bucket (`series.manifest.json` in the series' folder or
prefix). It is built from the database and the files alone, so a retry builds the
same bytes, and a bucket that already holds them skips them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from relay_sender.commitment import CommittedDicomDestination
from relay_sender.destinations import Destination, OutgoingSeries
from relay_shared.db import record_event, session_scope
from relay_shared.manifest import (
    MANIFEST_NAME,
    Confirmation,
    InstanceSent,
    SeriesFacts,
    build_manifest,
    manifest_bytes,
    sha256_of,
)
from relay_shared.models import Delivery, DeliveryState, Series, SeriesManifest, utcnow
from relay_shared.pools import kept_pool
from relay_shared.signing import SigningKey

log = logging.getLogger(__name__)
HASH_THREADS = 4
DEFAULT_PROJECT = "default"
# How each kind of destination proved it holds every instance (README, Destinations).
PROOFS = {
    "outbox": "the folder holds each file at its full size",
    "orthanc": "Orthanc's /tools/find lists each instance",
    "dicom": "C-FIND at IMAGE level finds each instance",
    "dicomweb": "QIDO-RS lists each instance",
    "gcs": "the bucket lists each object with the MD5 or CRC32C of the file sent",
    "s3": "HeadObject shows each object with the size and SHA-256 (or MD5) of the file sent",
}
COMMITMENT_PROOF = "storage commitment: the AE's N-EVENT-REPORT names each instance committed"


@runtime_checkable
class HoldsFiles(Protocol):
    def put_manifest(self, series: OutgoingSeries, name: str, content: bytes) -> str: ...


class ManifestWriter:
    """`SendContext.after_verified`: sign the series' manifest, keep it, place it."""

    def __init__(self, engine: Engine, key: SigningKey, relay_version: str) -> None:
        self._engine = engine
        self._key = key
        self._version = relay_version

    def __call__(self, series: OutgoingSeries, destinations: Sequence[Destination]) -> None:
        content = manifest_bytes(self._key.sign(build_manifest(
            self._facts(series), self._version, _hashed(series),
            self._confirmations(series, destinations))))
        self._store(series.series_id, content)
        placed = [d.put_manifest(series, MANIFEST_NAME, content) for d in destinations
                  if isinstance(d, HoldsFiles)]
        with session_scope(self._engine) as session:
            record_event(session, series.series_id, "sender", "manifest",
                         f"signed by key {self._key.key_id[:16]}; beside the data at "
                         f"{len(placed)} destination(s), the rest from the API")
        log.info("manifest signed", extra={"series_id": series.series_id,
                                           "placed": len(placed)})

    def _facts(self, series: OutgoingSeries) -> SeriesFacts:
        with session_scope(self._engine) as session:
            row = session.get(Series, series.series_id)
            assert row is not None
            return SeriesFacts(series.series_id, series.study_instance_uid,
                               series.series_instance_uid, row.project or DEFAULT_PROJECT,
                               row.projects_sha256, dict(row.audit or {}))

    def _confirmations(self, series: OutgoingSeries, destinations: Sequence[Destination]
                       ) -> list[Confirmation]:
        image_ids = [i.image_id for i in series.instances]
        with session_scope(self._engine) as session:
            rows = list(session.exec(select(Delivery).where(
                col(Delivery.image_id).in_(image_ids),
                Delivery.state == DeliveryState.CONFIRMED)))
        out = []
        for destination in destinations:
            times = [r.confirmed_at for r in rows
                     if r.destination == destination.name and r.confirmed_at is not None]
            itself = getattr(destination, "inner", destination)  # behind a transcoding step
            kind = type(itself).name
            proof = COMMITMENT_PROOF if isinstance(itself, CommittedDicomDestination) \
                else PROOFS.get(kind, "the destination's own check")
            sent_objects = getattr(destination, "sent_objects", None)
            out.append(Confirmation(destination.name, kind, proof, len(times),
                                    _iso(max(times)) if times else "",
                                    _transcoded(series, destination),
                                    sent_objects(series) if sent_objects else ()))
        return out

    def _store(self, series_id: int, content: bytes) -> None:
        with session_scope(self._engine) as session:
            row = session.exec(select(SeriesManifest).where(
                SeriesManifest.series_id == series_id)).first() or SeriesManifest(
                    series_id=series_id, signing_key_id="", sha256="", content="")
            row.signing_key_id, row.content = self._key.key_id, content.decode()
            row.sha256, row.updated_at = hashlib.sha256(content).hexdigest(), utcnow()
            session.add(row)


def _hashed(series: OutgoingSeries) -> list[InstanceSent]:
    """Each file's size and SHA-256. A few threads each take a run of the series: reading
    and hashing release the GIL, so a slow volume's reads overlap; a thread per file
    instead handed the GIL back and forth for every one of them."""
    instances = series.instances
    per_thread = max(1, -(-len(instances) // HASH_THREADS))

    def run(start: int) -> list[InstanceSent]:
        sent = []
        for instance in instances[start:start + per_thread]:
            size, digest = sha256_of(instance.path)
            sent.append(InstanceSent(instance.sop_instance_uid, size, digest))
        return sent

    pool = kept_pool("manifest-hash", HASH_THREADS)
    runs = pool.map(run, range(0, len(instances), per_thread))
    return [sent for run_of in runs for sent in run_of]


def _transcoded(series: OutgoingSeries, destination: Destination) -> tuple[InstanceSent, ...]:
    """What a destination with a transfer_syntax list was given in place of the series'
    own files."""
    sent_files = getattr(destination, "sent_files", None)
    if sent_files is None:
        return ()
    own = {i.sop_instance_uid: i.path for i in series.instances}
    out = []
    for sop_instance_uid, path in sorted(sent_files(series).items()):
        if path != own.get(sop_instance_uid):
            size, digest = sha256_of(path)
            out.append(InstanceSent(sop_instance_uid, size, digest))
    return tuple(out)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite gives naive values back, in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()
