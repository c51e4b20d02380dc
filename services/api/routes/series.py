from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from relay_api import queries
from relay_api.audit import audited, resource
from relay_api.deps import Id, Offset, Operator, Reader, RuntimeDep, SessionDep
from relay_api.schemas import Page, RetryAccepted, SeriesDetail, SeriesSummary, SortKey
from relay_shared import outbox, series_state
from relay_shared.db import session_scope
from relay_shared.models import Image, Series, Stage, Status, Study
from relay_shared.series_state import RESTART

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/series", tags=["series"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such series"}}


def as_utc(value: datetime | None, name: str) -> datetime | None:
    """A date without an offset is taken as UTC; one that UTC cannot hold is refused."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise HTTPException(422, f"{name} is out of range") from None


def _filtered(status_filter: Status | None, patient: str | None, modality: str | None,
              created_from: datetime | None, created_to: datetime | None,
              project: str | None = None) -> SelectOfScalar[Series]:
    query = select(Series)
    if project is not None:
        query = query.where(Series.project == project)
    if status_filter is not None:
        query = query.where(Series.status == status_filter)
    if patient is not None:
        query = query.join(Study, col(Study.id) == Series.study_id).where(
            Study.patient_pseudonym == patient)
    if modality is not None:
        query = query.where(Series.modality == modality.upper())
    if created_from is not None:
        query = query.where(col(Series.created_at) >= as_utc(created_from, "created_from"))
    if created_to is not None:
        query = query.where(col(Series.created_at) < as_utc(created_to, "created_to"))
    return query


def _ordered(query: SelectOfScalar[Series], sort: SortKey) -> SelectOfScalar[Series]:
    column = col(getattr(Series, sort.value.lstrip("-")))
    descending = sort.value.startswith("-")
    # The id breaks ties so that offset pages neither skip nor repeat a row.
    tie = col(Series.id).desc() if descending else col(Series.id)
    return query.order_by(column.desc() if descending else column, tie)


@router.get("", response_model=Page[SeriesSummary])
def list_series(
    session: SessionDep, _: Reader,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
    patient_pseudonym: Annotated[str | None, Query(max_length=64)] = None,
    modality: Annotated[str | None, Query(max_length=16)] = None,
    project: Annotated[str | None, Query(max_length=40, description="Only this project's "
                                         "series")] = None,
    created_from: Annotated[datetime | None, Query(
        description="Created at or after (ISO 8601; UTC when no offset is given)")] = None,
    created_to: Annotated[datetime | None, Query(description="Created before")] = None,
    sort: SortKey = SortKey.ID_DESC,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Page[SeriesSummary]:
    query = _filtered(status_filter, patient_pseudonym, modality, created_from, created_to,
                      project)
    total = queries.total_of(session, query)
    rows = list(session.exec(_ordered(query, sort).offset(offset).limit(limit)))
    return Page(items=queries.summaries(session, rows), total=total, limit=limit,
                offset=offset)


@router.get("/{series_id}", response_model=SeriesDetail, responses=NOT_FOUND)
def get_series(series_id: Id, session: SessionDep, _: Reader) -> SeriesDetail:
    series = session.get(Series, series_id)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
    (summary,) = queries.summaries(session, [series])
    images = session.exec(select(Image).where(Image.series_id == series_id)
                          .order_by(col(Image.id)))
    return SeriesDetail(**summary.model_dump(),
                        failures=queries.failures_of(session, [series_id])[series_id],
                        images=queries.images_out(session, list(images)),
                        events=queries.events_of(session, series_id))




@router.post("/{series_id}/retry", response_model=RetryAccepted, status_code=202,
             responses={**NOT_FOUND,
                        409: {"description": "The series is not in a state to retry"}})
async def retry_series(series_id: Id, rt: RuntimeDep, caller: Operator) -> RetryAccepted:
    queues = {Stage.DEID: rt.settings.deid_queue, Stage.SEND: rt.settings.send_queue}
    with session_scope(rt.engine) as session:
        series = session.get(Series, series_id)
        if series is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
        if series.status is not Status.FAILED or series.stage not in RESTART:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"series {series_id} is {series.status.value}; only a FAILED "
                                "series that got past ingest can be retried")
        stage = series.stage.value
        series_state.retried(session, series, by=caller.describe())
        outbox.enqueue(session, queues[series.stage], series)
        audited(session, caller, "retry", f"series {series_id} retried from stage {stage}",
                series_id, (resource(f"/api/v1/series/{series_id}"),))
        accepted = RetryAccepted(series_id=series_id, stage=series.stage, status=series.status)
        trace_id = series.trace_id
    log.info("retry queued", extra={"series_id": series_id, "trace_id": trace_id,
                                    "stage": accepted.stage.value})
    try:
        await outbox.flush(rt.engine, rt.bus)
    except Exception:  # committed: the outbox sweep publishes it once the bus is back
        log.warning("retry queued, publishing deferred", exc_info=True)
    return accepted
