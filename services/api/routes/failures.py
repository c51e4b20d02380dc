from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import or_
from sqlmodel import col, select

from relay_api import queries
from relay_api.deps import Offset, Reader, SessionDep
from relay_api.schemas import Page, SeriesFailure
from relay_shared.models import Image, Series

router = APIRouter(prefix="/api/v1/failures", tags=["failures"])


@router.get("", response_model=Page[SeriesFailure])
def list_failures(session: SessionDep, _: Reader,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  offset: Offset = 0
                  ) -> Page[SeriesFailure]:
    """Series that failed, and series that went on without some of their images."""
    failed_images = select(Image.series_id).where(
        col(Image.status).in_(queries.FAILED_IMAGE_STATUSES))
    query = select(Series).where(or_(col(Series.status).in_(queries.FAILED_IMAGE_STATUSES),
                                     col(Series.id).in_(failed_images)))
    total = queries.total_of(session, query)
    rows = list(session.exec(query.order_by(col(Series.updated_at).desc(), col(Series.id).desc())
                             .offset(offset).limit(limit)))
    images = queries.failures_of(session, [s.id for s in rows if s.id is not None])
    items = [SeriesFailure(series_id=s.id, status=s.status, stage=s.stage, error=s.error,
                           failed_images=images[s.id], updated_at=s.updated_at)
             for s in rows if s.id is not None]
    return Page(items=items, total=total, limit=limit, offset=offset)
