"""Search the metadata subset of series sent to a bucket: de-identified values only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from relay_api import queries
from relay_api.deps import Offset, Reader, SessionDep
from relay_api.schemas import Page
from relay_shared.models import Series, SeriesMetadata, Status

router = APIRouter(prefix="/api/v1/search", tags=["search"])
# No control characters: PostgreSQL refuses a NUL in any text it is asked to compare.
PLAIN = r"^[^\x00-\x1f]*$"


class SearchHit(BaseModel):
    series_id: int
    status: Status
    location: str
    format: str
    fallback_reason: str | None
    modality: str | None
    body_part: str | None
    series_description: str | None
    patient_pseudonym: str | None
    study_uid: str | None
    series_uid: str | None
    study_date: date | None
    slice_thickness: float | None
    fields: dict[str, object]
    updated_at: datetime


class Filters(BaseModel):
    modality: str | None = None
    body_part: str | None = None
    patient_pseudonym: str | None = None
    study_uid: str | None = None
    description: str | None = None
    study_date_from: date | None = None
    study_date_to: date | None = None
    format: str | None = None


def _filtered(f: Filters) -> Select[SeriesMetadata, str]:
    query = select(SeriesMetadata, Series.status).join(
        Series, col(Series.id) == SeriesMetadata.series_id)
    for column, value in ((SeriesMetadata.modality, f.modality),
                          (SeriesMetadata.body_part, f.body_part)):
        if value is not None:
            query = query.where(column == value.upper())  # both code strings (CS)
    for column, value in ((SeriesMetadata.patient_pseudonym, f.patient_pseudonym),
                          (SeriesMetadata.study_uid, f.study_uid),
                          (SeriesMetadata.format, f.format)):
        if value is not None:
            query = query.where(column == value)
    if f.description is not None:
        pattern = "%" + f.description.lower().replace("%", r"\%").replace("_", r"\_") + "%"
        query = query.where(func.lower(col(SeriesMetadata.series_description))
                            .like(pattern, escape="\\"))
    if f.study_date_from is not None:
        query = query.where(col(SeriesMetadata.study_date) >= f.study_date_from)
    if f.study_date_to is not None:
        query = query.where(col(SeriesMetadata.study_date) <= f.study_date_to)
    return query


@router.get("", response_model=Page[SearchHit])
def search(
    session: SessionDep, _: Reader,
    modality: Annotated[str | None, Query(max_length=16, pattern=PLAIN)] = None,
    body_part: Annotated[str | None, Query(max_length=64, pattern=PLAIN)] = None,
    patient_pseudonym: Annotated[str | None, Query(max_length=64, pattern=PLAIN)] = None,
    study_uid: Annotated[str | None, Query(max_length=64, pattern=PLAIN)] = None,
    description: Annotated[str | None, Query(
        max_length=64, pattern=PLAIN,
        description="Part of the series description, any case")] = None,
    study_date_from: Annotated[date | None, Query(
        description="Shifted study date on or after (YYYY-MM-DD)")] = None,
    study_date_to: Annotated[date | None, Query(description="On or before")] = None,
    format: Annotated[str | None, Query(pattern="^(nifti|dicom)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Page[SearchHit]:
    query = _filtered(Filters(
        modality=modality, body_part=body_part, patient_pseudonym=patient_pseudonym,
        study_uid=study_uid, description=description, study_date_from=study_date_from,
        study_date_to=study_date_to, format=format))
    total = queries.total_of(session, query)
    rows = list(session.exec(query.order_by(col(SeriesMetadata.id).desc())
                             .offset(offset).limit(limit)))
    items = [SearchHit(status=Status(status), **row.model_dump(exclude={"id"}))
             for row, status in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)
