from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import func
from sqlmodel import Session, col, select

from relay_api.deps import Operator, Reader, RuntimeDep, SessionDep
from relay_api.schemas import (
    EventOut,
    ImageFailure,
    Page,
    RetryAccepted,
    SeriesDetail,
    SeriesSummary,
)
from relay_shared import outbox
from relay_shared.db import record_event, session_scope
from relay_shared.models import Event, Image, Series, Stage, Status, Study, utcnow

router = APIRouter(prefix="/api/v1/series", tags=["series"])
FAILED_IMAGE_STATUSES = (Status.FAILED, Status.QUARANTINED)


def _image_counts(session: Session, series_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {sid: {} for sid in series_ids}
    if not series_ids:
        return counts
    rows = session.exec(select(Image.series_id, Image.status, func.count())
                        .where(col(Image.series_id).in_(series_ids))
                        .group_by(Image.series_id, Image.status))
    for series_id, image_status, count in rows:
        counts[series_id][image_status.value] = count
    return counts


def _summary(series: Series, counts: dict[str, int]) -> SeriesSummary:
    return SeriesSummary(**series.model_dump(include=set(SeriesSummary.model_fields)),
                         image_count=sum(counts.values()))


@router.get("", response_model=Page[SeriesSummary])
def list_series(session: SessionDep, _: Reader,
                status_filter: Annotated[Status | None, Query(alias="status")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> Page[SeriesSummary]:
    query = select(Series)
    if status_filter is not None:
        query = query.where(Series.status == status_filter)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = list(session.exec(query.order_by(col(Series.id).desc()).offset(offset).limit(limit)))
    counts = _image_counts(session, [s.id for s in rows if s.id is not None])
    return Page(items=[_summary(s, counts[s.id]) for s in rows if s.id is not None],
                total=total, limit=limit, offset=offset)


@router.get("/{series_id}", response_model=SeriesDetail,
            responses={404: {"description": "No such series"}})
def get_series(series_id: int, session: SessionDep, _: Reader) -> SeriesDetail:
    series = session.get(Series, series_id)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
    counts = _image_counts(session, [series_id])[series_id]
    failures = session.exec(select(Image).where(
        Image.series_id == series_id, col(Image.status).in_(FAILED_IMAGE_STATUSES)))
    events = session.exec(select(Event).where(Event.series_id == series_id)
                          .order_by(col(Event.id)))
    study = session.get(Study, series.study_id) if series.study_id else None
    return SeriesDetail(
        **_summary(series, counts).model_dump(),
        images_by_status=counts,
        failures=[ImageFailure(image_id=i.id, status=i.status, reason=i.reason)
                  for i in failures if i.id is not None],
        events=[EventOut(at=e.at, service=e.service, kind=e.kind, detail=e.detail)
                for e in events],
        patient_pseudonym=study.patient_pseudonym if study else None,
    )


RESTART = {Stage.DEID: Status.NEW, Stage.SEND: Status.DONEPROCESSING}


@router.post("/{series_id}/retry", response_model=RetryAccepted, status_code=202,
             responses={404: {"description": "No such series"},
                        409: {"description": "The series is not in a state to retry"}})
async def retry_series(series_id: int, rt: RuntimeDep, _: Operator) -> RetryAccepted:
    queues = {Stage.DEID: rt.settings.deid_queue, Stage.SEND: rt.settings.send_queue}
    with session_scope(rt.engine) as session:
        series = session.get(Series, series_id)
        if series is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
        if series.status is not Status.FAILED or series.stage not in RESTART:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"series {series_id} is {series.status.value}; only a FAILED "
                                "series that got past ingest can be retried")
        series.status, series.attempts, series.updated_at = RESTART[series.stage], 0, utcnow()
        outbox.enqueue(session, queues[series.stage], series)
        record_event(session, series_id, "api", "retry", f"from stage {series.stage.value}")
        accepted = RetryAccepted(series_id=series_id, stage=series.stage, status=series.status)
    await outbox.flush(rt.engine, rt.bus)
    return accepted
