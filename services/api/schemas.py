"""Response models. They carry internal ids, de-identified UIDs and pseudonyms only."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from relay_shared.models import Stage, Status


class SeriesSummary(BaseModel):
    id: int
    series_uid: str | None
    study_id: int | None
    modality: str | None
    status: Status
    stage: Stage
    error: str | None
    image_count: int
    created_at: datetime
    updated_at: datetime


class ImageFailure(BaseModel):
    image_id: int
    status: Status
    reason: str | None


class EventOut(BaseModel):
    at: datetime
    service: str
    kind: str
    detail: str | None


class SeriesDetail(SeriesSummary):
    images_by_status: dict[str, int]
    failures: list[ImageFailure]
    events: list[EventOut]
    patient_pseudonym: str | None


class StudyOut(BaseModel):
    id: int
    study_uid: str
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
