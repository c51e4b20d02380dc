"""Database tables, the same on SQLite and PostgreSQL.

UIDs stored here are the de-identified ones (keyed hashes of the originals), so
the tables can be unique on them for idempotent ingest without holding the
originals in clear.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time, aware: SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Status(StrEnum):
    NEW = "NEW"
    PROCESSING = "PROCESSING"
    DONEPROCESSING = "DONEPROCESSING"
    SENT = "SENT"
    DONE = "DONE"
    FAILED = "FAILED"
    QUARANTINED = "QUARANTINED"
    IGNORED = "IGNORED"  # a project dropped it (or none took it): nothing kept but the record
    HELD = "HELD"  # its project holds it until an operator releases or drops it
    REVIEW = "REVIEW"  # de-identified; waits for a reviewer to approve or reject it


class Stage(StrEnum):
    INGEST = "ingest"
    DEID = "deid"
    SEND = "send"


class Study(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_uid: str = Field(unique=True, index=True, max_length=64)
    patient_pseudonym: str | None = Field(default=None, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Series(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # NULL only for a delivery in which no file was readable DICOM.
    series_uid: str | None = Field(default=None, unique=True, index=True, max_length=64)
    study_id: int | None = Field(default=None, foreign_key="study.id", index=True)
    modality: str | None = Field(default=None, max_length=16, index=True)
    status: Status = Field(default=Status.NEW, index=True)
    # The stage a retry restarts from: the one that failed or is pending.
    stage: Stage = Field(default=Stage.DEID)
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    key_id: str | None = Field(default=None, max_length=32)
    trace_id: str = Field(max_length=32)
    audit: dict | None = Field(default=None, sa_column=Column(JSON))
    # How it arrived (scp, folder, follow, collect), and the project that took it with
    # the hash of the projects file that routed it (NULL: no file, the implicit project).
    source: str | None = Field(default=None, max_length=16)
    project: str | None = Field(default=None, max_length=40, index=True)
    projects_sha256: str | None = Field(default=None, max_length=64)
    # Indexed: the console filters by the date a series arrived.
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Image(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="series.id", index=True)
    # NULL for a file that could not be read as DICOM.
    sop_uid: str | None = Field(default=None, unique=True, index=True, max_length=64)
    sop_class_uid: str | None = Field(default=None, max_length=64)
    transfer_syntax_uid: str | None = Field(default=None, max_length=64)
    status: Status = Field(default=Status.NEW, index=True)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    quarantine_path: str | None = Field(default=None, sa_column=Column(Text))
    size_bytes: int | None = None
    # Tells a harmless re-delivery from a reused SOPInstanceUID with other content:
    # BLAKE3 of the received file; rows written before it was used hold only the SHA-256.
    content_blake3: str | None = Field(default=None, max_length=64)
    content_sha256: str | None = Field(default=None, max_length=64)
    # Burned-in text: why the pixels may hold text (NULL: nothing suggests it), whether
    # regions were blacked out, the OCR gate's verdict ("passed", "held", "off",
    # "released") and the whole decision in words.
    pixel_flag: str | None = Field(default=None, max_length=128)
    pixel_redacted: bool = False
    pixel_gate: str | None = Field(default=None, max_length=16)
    pixel_reason: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(default_factory=utcnow)


class DeliveryState(StrEnum):
    CONFIRMED = "CONFIRMED"  # the destination said it holds the image
    FAILED = "FAILED"  # the last attempt did not get it confirmed; `error` says why


class Delivery(SQLModel, table=True):
    """What one destination last said about one image. A retry sends an image only
    to the destinations that have not confirmed it."""

    __table_args__ = (UniqueConstraint("image_id", "destination",
                                       name="uq_delivery_image_id_destination"),)
    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(foreign_key="image.id", index=True)
    series_id: int = Field(foreign_key="series.id", index=True)
    destination: str = Field(max_length=32)
    state: str = Field(max_length=16)
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    confirmed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class SeriesManifest(SQLModel, table=True):
    """The signed manifest of a delivered series, byte for byte as it was placed beside
    the data: the API serves it for destinations that hold no files of their own."""

    __tablename__ = "series_manifest"
    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="series.id", unique=True)
    signing_key_id: str = Field(max_length=64)
    sha256: str = Field(max_length=64)  # of `content`
    content: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SeriesIdentifiers(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="series.id", unique=True)
    source: str = Field(max_length=16)  # "local" or "service"
    key_id: str = Field(max_length=32)
    patient_pseudonym: str = Field(max_length=64)
    date_shift_days: int
    response_sha256: str | None = Field(default=None, max_length=64)
    # The original identity, kept only for the admin's mapping and only until the
    # retention purge: encrypted, with the id of the key that can open it.
    original_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    original_key_id: str | None = Field(default=None, max_length=32)
    originals_purged_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    """Append-only history: never updated, never holds an identifying value."""

    id: int | None = Field(default=None, primary_key=True)
    series_id: int | None = Field(default=None, foreign_key="series.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    service: str = Field(max_length=16)
    process: str = Field(max_length=128)
    kind: str = Field(max_length=32)
    detail: str | None = Field(default=None, sa_column=Column(Text))


class OutboxMessage(SQLModel, table=True):
    """A message committed with the work that caused it, published afterwards."""

    id: int | None = Field(default=None, primary_key=True)
    queue: str = Field(max_length=128)
    series_id: int
    trace_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SeriesMetadata(SQLModel, table=True):
    """The searchable subset of a series as sent to a bucket: de-identified values only,
    read back from the files the sender delivered (pseudonyms, new UIDs, shifted dates)."""

    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="series.id", unique=True)
    location: str = Field(sa_column=Column(Text, nullable=False))
    format: str = Field(max_length=8)  # "nifti" or "dicom"
    # Why a series meant to be a volume went as DICOM files.
    fallback_reason: str | None = Field(default=None, max_length=128)
    modality: str | None = Field(default=None, max_length=16, index=True)
    body_part: str | None = Field(default=None, max_length=64, index=True)
    series_description: str | None = Field(default=None, max_length=64)
    patient_pseudonym: str | None = Field(default=None, max_length=64, index=True)
    study_uid: str | None = Field(default=None, max_length=64, index=True)
    series_uid: str | None = Field(default=None, max_length=64)
    study_date: date | None = Field(default=None, index=True)
    slice_thickness: float | None = None
    fields: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class FollowCursor(SQLModel, table=True):
    """How far the changes feed of one followed Orthanc has been taken."""

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(unique=True, max_length=255)
    last_change: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class FollowedSeries(SQLModel, table=True):
    """A stable series taken from a followed Orthanc, so a replayed change is skipped.
    ``orthanc_id`` is Orthanc's own resource id (a hash), not a DICOM UID."""

    __table_args__ = (UniqueConstraint("source", "orthanc_id",
                                       name="uq_followedseries_source_orthanc_id"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=255)
    orthanc_id: str = Field(max_length=64)
    # The de-identified SeriesInstanceUID, as Series.series_uid holds it.
    series_uid: str | None = Field(default=None, max_length=64, index=True)
    instances: int = 0
    taken_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None


class RowState(StrEnum):
    QUEUED = "QUEUED"
    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    AMBIGUOUS = "AMBIGUOUS"
    RETRIEVING = "RETRIEVING"
    DONE = "DONE"
    FAILED = "FAILED"


class Collection(SQLModel, table=True):
    """A worklist handed over to be collected from the PACS."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class CollectionRow(SQLModel, table=True):
    """One row of a worklist. The query (an accession number, or a patient id and dates)
    is identifying: it is kept encrypted for the collector, and as a keyed hash
    (``query_key``) that tells a row already collected by an earlier worklist."""

    id: int | None = Field(default=None, primary_key=True)
    collection_id: int = Field(foreign_key="collection.id", index=True)
    row_number: int
    query_key: str = Field(max_length=64, index=True)
    query_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    query_key_id: str | None = Field(default=None, max_length=32)
    state: str = Field(default=RowState.QUEUED.value, max_length=16, index=True)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    # De-identified StudyInstanceUIDs and SeriesInstanceUIDs the PACS answered with.
    study_uids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    series_uids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    instances: int | None = None
    attempts: int = 0
    retrieved_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class NotificationState(StrEnum):
    PENDING = "PENDING"  # waiting for its (next) attempt
    DELIVERED = "DELIVERED"  # the receiver answered 2xx
    GAVE_UP = "GAVE_UP"  # every attempt failed; a person can queue it again


class Notification(SQLModel, table=True):
    """One event for one webhook, written in the transaction of the change it reports.
    ``body`` is the exact JSON sent (and signed): ids, pseudonyms and counts only."""

    id: int | None = Field(default=None, primary_key=True)
    hook: str = Field(max_length=32, index=True)
    event: str = Field(max_length=32)
    series_id: int | None = Field(default=None, index=True)
    collection_id: int | None = Field(default=None, index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default=NotificationState.PENDING.value, max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    # A fixed phrase ("HTTP 503", "connection failed"), never a receiver's answer.
    last_error: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class AuditRecord(SQLModel, table=True):
    """The security audit trail: who did or tried what, when, from where, with what
    outcome. Append-only; sent on as a DICOM audit message when a syslog receiver is set.
    ``actor`` is a token's or a user's name, never a token; ``detail`` names objects by
    the relay's ids and pseudonyms only."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=128, index=True)
    actor_kind: str = Field(max_length=16)  # token, user, system
    role: str | None = Field(default=None, max_length=16)
    action: str = Field(max_length=32, index=True)
    outcome: str = Field(max_length=16)  # success, failure
    address: str | None = Field(default=None, max_length=64)
    series_id: int | None = Field(default=None, index=True)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    process: str = Field(max_length=128)


class WebSession(SQLModel, table=True):
    """A dashboard sign-in, by the SHA-256 of its cookie: pending (state, nonce and the
    PKCE verifier of a sign-in under way) until the provider sends the person back,
    then signed in (who, with which role) until it expires or they sign out."""

    id: int | None = Field(default=None, primary_key=True)
    cookie_sha256: str = Field(max_length=64, unique=True)
    state: str | None = Field(default=None, max_length=128)
    nonce: str | None = Field(default=None, max_length=128)
    code_verifier: str | None = Field(default=None, max_length=128)
    subject: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=128)
    role: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
class ReviewOriginal(SQLModel, table=True):
    """What the profile changed in one image of a series under review, before it changed
    it: sealed by the identifier vault, opened only for an admin (audited), and deleted
    once the series is decided."""

    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="series.id", index=True)
    image_id: int = Field(foreign_key="image.id", unique=True)
    key_id: str = Field(max_length=32)
    sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ProposalState(StrEnum):
    PROPOSED = "PROPOSED"  # waits for an admin
    ACCEPTED = "ACCEPTED"  # a region rule: deid applies it to the next series
    REFUSED = "REFUSED"  # an admin said no; the device is not proposed again


class PixelRuleProposal(SQLModel, table=True):
    """A region rule learned from where the OCR gate found text on a device no rule
    covered. The device's make, model and image size are the rule's conditions; the
    boxes, [x, y, width, height] in pixels, are where the text was read."""

    __table_args__ = (UniqueConstraint("manufacturer", "model", "rows", "columns",
                                       name="uq_pixelruleproposal_device"),)
    id: int | None = Field(default=None, primary_key=True)
    manufacturer: str = Field(max_length=64)
    model: str = Field(max_length=64)
    rows: int
    columns: int
    boxes: list[list[int]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    covers_text: bool = False
    state: str = Field(default=ProposalState.PROPOSED.value, max_length=16, index=True)
    # Held images whose text went into the boxes, and the last one.
    images_seen: int = 0
    last_image_id: int | None = None
    decided_by: str | None = Field(default=None, max_length=160)
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
class StagedDelivery(SQLModel, table=True):
    """A series' instances gathered by one SCP process (one staged delivery), while it
    receives them and until ingest takes them in. Several SCP processes behind one
    address each gather a part of a series: a part closes only once the series is quiet
    at every one of them, and de-identification starts only when no part is pending."""

    __tablename__ = "staged_delivery"
    id: int | None = Field(default=None, primary_key=True)
    delivery: str = Field(max_length=128, unique=True)  # the staged folder's name
    series_uid: str = Field(max_length=64, index=True)  # de-identified, as Series.series_uid
    last_arrival: datetime = Field(default_factory=utcnow)
    # The SCP process says every second that it still holds the part: one that died stops.
    heartbeat_at: datetime = Field(default_factory=utcnow)
    handed_over_at: datetime | None = None  # in incoming, for ingest to take
