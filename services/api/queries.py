"""Reads shared by several routes: image counts, progress, series summaries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from relay_api.schemas import DeliveryOut, EventOut, ImageFailure, ImageOut, SeriesSummary
from relay_shared.models import Delivery, Event, Image, Series, Status, Study
from relay_shared.series_state import GIVEN_UP, SETTLED

FAILED_IMAGE_STATUSES = GIVEN_UP
# How far along an image is; a failed image is as settled as a delivered one.
_WEIGHT = {Status.NEW: 0.0, Status.PROCESSING: 0.25, Status.DONEPROCESSING: 0.5,
           Status.SENT: 0.75, Status.DONE: 1.0, Status.FAILED: 1.0, Status.QUARANTINED: 1.0,
           Status.IGNORED: 1.0, Status.HELD: 0.0}


def total_of(session: Session, query: Any) -> int:
    """How many rows ``query`` matches before paging, for a Page's ``total``."""
    return int(session.exec(select(func.count()).select_from(query.subquery())).one())


def image_counts(session: Session, series_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {sid: {} for sid in series_ids}
    if not series_ids:
        return counts
    rows = session.exec(select(Image.series_id, Image.status, func.count())
                        .where(col(Image.series_id).in_(series_ids))
                        .group_by(col(Image.series_id), col(Image.status)))
    for series_id, image_status, count in rows:
        counts[series_id][str(image_status)] = count
    return counts


def progress(series_status: Status, counts: dict[str, int]) -> float:
    if series_status in SETTLED:
        return 1.0
    total = sum(counts.values())
    if not total:
        return 0.0
    # Images stay NEW while their series is being de-identified: count them as started.
    floor = _WEIGHT[Status.PROCESSING] if series_status is Status.PROCESSING else 0.0
    done = sum(max(_WEIGHT[Status(s)], floor) * n for s, n in counts.items())
    return round(min(done / total, 1.0), 4)


def pseudonyms(session: Session, study_ids: set[int]) -> dict[int, str | None]:
    if not study_ids:
        return {}
    rows = session.exec(select(Study.id, Study.patient_pseudonym)
                        .where(col(Study.id).in_(study_ids)))
    return {study_id: pseudonym for study_id, pseudonym in rows if study_id is not None}


def summaries(session: Session, rows: list[Series]) -> list[SeriesSummary]:
    ids = [s.id for s in rows if s.id is not None]
    counts = image_counts(session, ids)
    names = pseudonyms(session, {s.study_id for s in rows if s.study_id is not None})
    return [summary(s, counts[s.id], names.get(s.study_id or -1))
            for s in rows if s.id is not None]


def summary(series: Series, counts: dict[str, int], pseudonym: str | None) -> SeriesSummary:
    fields = series.model_dump(include=set(SeriesSummary.model_fields))
    return SeriesSummary(**fields, patient_pseudonym=pseudonym, image_count=sum(counts.values()),
                         images_by_status=counts, progress=progress(series.status, counts))


def images_out(session: Session, images: list[Image]) -> list[ImageOut]:
    """The images with each destination's result, in one query for all of them."""
    deliveries: dict[int, list[DeliveryOut]] = {}
    ids = [image.id for image in images if image.id is not None]
    if ids:
        for row in session.exec(select(Delivery).where(col(Delivery.image_id).in_(ids))
                                .order_by(col(Delivery.destination))):
            deliveries.setdefault(row.image_id, []).append(
                DeliveryOut.model_validate(row, from_attributes=True))
    return [ImageOut.model_validate(image, from_attributes=True).model_copy(
        update={"deliveries": deliveries.get(image.id or 0, [])}) for image in images]


def failures_of(session: Session, series_ids: list[int]) -> dict[int, list[ImageFailure]]:
    found: dict[int, list[ImageFailure]] = {sid: [] for sid in series_ids}
    if not series_ids:
        return found
    rows = session.exec(select(Image).where(col(Image.series_id).in_(series_ids),
                                            col(Image.status).in_(FAILED_IMAGE_STATUSES))
                        .order_by(col(Image.id)))
    for image in rows:
        assert image.id is not None
        found[image.series_id].append(
            ImageFailure(image_id=image.id, status=image.status, reason=image.reason,
                         pixel_gate=image.pixel_gate))
    return found


def events_of(session: Session, series_id: int) -> list[EventOut]:
    rows = session.exec(select(Event).where(Event.series_id == series_id)
                        .order_by(col(Event.id)))
    return [EventOut(at=e.at, service=e.service, kind=e.kind, detail=e.detail) for e in rows]
