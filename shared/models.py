"""Database tables, the same on SQLite and PostgreSQL.

UIDs stored here are the de-identified ones (keyed hashes of the originals), so
the tables can be unique on them for idempotent ingest without holding the
originals in clear.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    NEW = "NEW"
    PROCESSING = "PROCESSING"
    DONEPROCESSING = "DONEPROCESSING"
    SENT = "SENT"
    DONE = "DONE"
    FAILED = "FAILED"
    QUARANTINED = "QUARANTINED"


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
    created_at: datetime = Field(default_factory=utcnow)
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
    # Tells a harmless re-delivery from a reused SOPInstanceUID with other content.
    content_sha256: str | None = Field(default=None, max_length=64)
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
