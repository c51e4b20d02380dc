from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import col, select

from relay_api.deps import Offset, Reader, SessionDep
from relay_api.schemas import Page, StudyOut
from relay_shared.models import Series, Study

router = APIRouter(prefix="/api/v1/studies", tags=["studies"])


@router.get("", response_model=Page[StudyOut])
def list_studies(session: SessionDep, _: Reader,
                 project: Annotated[str | None, Query(
                     max_length=40, description="Only studies with series of this project; "
                     "series_count counts those")] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 offset: Offset = 0) -> Page[StudyOut]:
    query = select(Study, func.count(col(Series.id))).join(
        Series, col(Series.study_id) == Study.id, isouter=project is None)
    if project is not None:
        query = query.where(Series.project == project)
    query = query.group_by(col(Study.id))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Study.id).desc()).offset(offset).limit(limit))
    items = [StudyOut(id=study.id, study_uid=study.study_uid,
                      patient_pseudonym=study.patient_pseudonym, series_count=count,
                      created_at=study.created_at) for study, count in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)
