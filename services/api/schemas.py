"""Response models. They carry internal ids, de-identified UIDs and pseudonyms only;
the admin models below also carry the mapping (date shift, key, source) that can
undo a pseudonym, and are served to the admin role alone."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, computed_field

from relay_api.wording import failure_code, image_words, series_words
from relay_shared.models import DeliveryState, Stage, Status


class SeriesSummary(BaseModel):
    id: int
    series_uid: str | None = Field(description="The de-identified SeriesInstanceUID")
    study_id: int | None
    modality: str | None
    patient_pseudonym: str | None
    project: str | None = Field(description="The project that took the series (none: no "
                                "project did, and it was dropped)")
    status: Status
    stage: Stage = Field(description="The stage a retry restarts from")
    error: str | None
    image_count: int
    images_by_status: dict[str, int]
    progress: float = Field(ge=0, le=1, description="Share of the way through the pipeline")
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_text(self) -> str:
        """The status in plain words, as the console shows it."""
        unsent = sum(n for s, n in self.images_by_status.items()
                     if s in (Status.FAILED, Status.QUARANTINED))
        return series_words(self.status, self.stage, self.error, unsent)


class DeliveryOut(BaseModel):
    destination: str
    state: DeliveryState = Field(description="CONFIRMED: the destination holds the image; "
                                 "FAILED: the last attempt did not get it confirmed")
    error: str | None
    attempts: int
    confirmed_at: datetime | None
    updated_at: datetime


class ImageOut(BaseModel):
    id: int
    series_id: int
    sop_uid: str | None = Field(description="The de-identified SOPInstanceUID")
    sop_class_uid: str | None
    transfer_syntax_uid: str | None
    status: Status
    reason: str | None
    pixel_gate: str | None = Field(
        description="The burned-in text gate's verdict: passed, held, off, released, dropped "
        "(none: the image was not checked)")
    size_bytes: int | None
    updated_at: datetime
    deliveries: list[DeliveryOut] = Field(
        default_factory=list, description="Each destination's result for this image")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_text(self) -> str:
        return image_words(self.status, self.pixel_gate)


class ImageFailure(BaseModel):
    image_id: int
    status: Status
    reason: str | None
    pixel_gate: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_text(self) -> str:
        return image_words(self.status, self.pixel_gate)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def code(self) -> str:
        """A short reason code to group failures by."""
        return failure_code(self.status, None, self.pixel_gate)


class EventOut(BaseModel):
    at: datetime
    service: str
    kind: str
    detail: str | None


class SeriesDetail(SeriesSummary):
    failures: list[ImageFailure]
    images: list[ImageOut]
    events: list[EventOut]


class StudyOut(BaseModel):
    id: int
    study_uid: str = Field(description="The de-identified StudyInstanceUID")
    patient_pseudonym: str | None
    series_count: int
    created_at: datetime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class RetryAccepted(BaseModel):
    series_id: int
    stage: Stage
    status: Status


class SeriesFailure(BaseModel):
    series_id: int
    status: Status
    stage: Stage
    error: str | None
    failed_images: list[ImageFailure]
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_text(self) -> str:
        return series_words(self.status, self.stage, self.error,
                                    len(self.failed_images))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def code(self) -> str:
        """A short reason code to group failures by."""
        return failure_code(self.status, self.stage)


class Throughput(BaseModel):
    window_seconds: int
    series_received: int
    series_deidentified: int
    series_done: int
    series_failed: int
    images_done: int


class Stats(BaseModel):
    series_by_status: dict[str, int]
    images_by_status: dict[str, int]
    in_flight: int = Field(description="Series between ingest and DONE, not failed")
    last_hour: Throughput
    queues: dict[str, int] | None = Field(
        description="Messages waiting per queue; null when the bus cannot be asked")


class FinishedInterval(BaseModel):
    start: datetime
    finished: dict[str, int] = Field(description="Series that reached DONE, FAILED, "
                                     "QUARANTINED, IGNORED or HELD in the interval, by status")


class ThroughputHistory(BaseModel):
    interval_seconds: int
    intervals: list[FinishedInterval] = Field(description="Oldest first")
    queues: dict[str, int] | None = Field(
        description="Messages waiting per queue now; null when the bus cannot be asked")


class Me(BaseModel):
    role: str
    name: str
    kind: str  # token or user


class AuditTrailEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_kind: str
    role: str | None
    action: str
    outcome: str
    address: str | None
    series_id: int | None
    detail: str | None
    process: str


class SortKey(StrEnum):
    ID = "id"
    ID_DESC = "-id"
    CREATED = "created_at"
    CREATED_DESC = "-created_at"
    UPDATED = "updated_at"
    UPDATED_DESC = "-updated_at"
    STATUS = "status"
    STATUS_DESC = "-status"


class IdentifierMapping(BaseModel):
    series_id: int
    source: str
    key_id: str
    patient_pseudonym: str
    date_shift_days: int
    response_sha256: str | None
    created_at: datetime


class SeriesAudit(BaseModel):
    series_id: int
    key_id: str | None
    identifiers: IdentifierMapping | None
    audit: dict[str, Any] | None = Field(description="What the profile did, by tag, never values")
    quarantined_files: list[str]
    events: list[EventOut]


class AuditEvent(EventOut):
    id: int
    series_id: int | None
    process: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: Any = None
    errors: list[dict[str, Any]] | None = None


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "No token, or a token that is not valid", 403: "The role may not do this",
            404: "Not found", 409: "Conflict", 422: "The request is not valid",
            413: "The body is larger than RELAY_API_MAX_BODY_BYTES",
            503: "The request took longer than RELAY_API_REQUEST_TIMEOUT"}
    return {code: {"model": Problem, "description": text[code],
                   "content": {"application/problem+json": {}}} for code in codes}
