"""Worklists collected from the PACS: hand one over, follow its rows, download a report.

A worklist's values (accession numbers, patient ids) are identifying: they are
accepted, encrypted and never shown back. Rows are known by their line number in
the worklist, which is how the person who holds the list reads the report.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, col, select

from relay_api.deps import Id, Operator, Reader, RuntimeDep, SessionDep
from relay_ingest.worklist import (
    CONTROL,
    SETTLED,
    WorklistError,
    create_collection,
    parse_worklist,
)
from relay_shared.models import Collection, CollectionRow, RowState, Series

router = APIRouter(prefix="/api/v1/collections", tags=["collections"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such collection"}}
REPORT_COLUMNS = ("row", "state", "reason", "studies", "series", "instances", "series_ids")


class CollectionIn(BaseModel):
    name: str = Field("worklist", max_length=128,
                      description="A name for people; no control characters")
    csv: str = Field(min_length=1, max_length=2_000_000, description=(
        "The worklist: a header naming accession_number, or patient_id with date_from "
        "and date_to (YYYYMMDD); without a header, one accession number per line"))


    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if CONTROL.search(value):
            raise ValueError("the name holds a control character")
        return value


class CollectionRowOut(BaseModel):
    row: int = Field(description="The row's number in the worklist, from 1")
    state: RowState
    reason: str | None
    studies: int
    series: int
    instances: int | None = Field(description="Instances the PACS listed for the row")
    series_ids: list[int] = Field(description="The relay's series the row brought in")
    updated_at: datetime


class CollectionOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    rows_by_state: dict[str, int]
    settled: bool = Field(description="Every row has reached its final state")
    rows: list[CollectionRowOut]


@router.post("", response_model=CollectionOut, status_code=status.HTTP_202_ACCEPTED,
             responses={400: {"description": "The body is not JSON (not even UTF-8)"},
                        422: {"description": "The worklist cannot be read"}})
def create(body: CollectionIn, rt: RuntimeDep, _: Operator) -> CollectionOut:
    """Hand a worklist over to be collected from the PACS (by ingest's collector); rows
    an earlier worklist collected already are DONE at once."""
    try:
        queries = parse_worklist(body.csv)
    except WorklistError as exc:
        raise HTTPException(422, exc.reason) from None
    collection_id = create_collection(rt.engine, rt.vault, body.name,
                                      queries)
    with Session(rt.engine) as session:
        return describe(session, collection_id)


@router.get("/{collection_id}", response_model=CollectionOut, responses=NOT_FOUND)
def read(collection_id: Id, session: SessionDep, _: Reader) -> CollectionOut:
    return describe(session, collection_id)


@router.get("/{collection_id}/report.csv", responses={
    **NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "One line per row"}})
def report(collection_id: Id, session: SessionDep, _: Reader) -> Response:
    described = describe(session, collection_id)
    return Response(report_csv(described), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="collection-{collection_id}.csv"'})


def report_csv(described: CollectionOut) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for row in described.rows:
        writer.writerow([row.row, row.state.value, row.reason or "", row.studies, row.series,
                         "" if row.instances is None else row.instances,
                         " ".join(map(str, row.series_ids))])
    return out.getvalue()


def describe(session: Session, collection_id: int) -> CollectionOut:
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise HTTPException(404, f"collection {collection_id} does not exist")
    rows = session.exec(select(CollectionRow).where(
        CollectionRow.collection_id == collection_id)
        .order_by(col(CollectionRow.row_number))).all()
    uids = {uid for row in rows for uid in row.series_uids}
    ids = dict(session.exec(select(Series.series_uid, Series.id).where(
        col(Series.series_uid).in_(uids))).all()) if uids else {}
    out = [CollectionRowOut(
        row=row.row_number, state=RowState(row.state), reason=row.reason,
        studies=len(row.study_uids), series=len(row.series_uids), instances=row.instances,
        series_ids=sorted(cast("int", ids[uid]) for uid in row.series_uids if uid in ids),
        updated_at=row.updated_at) for row in rows]
    assert collection.id is not None
    return CollectionOut(
        id=collection.id, name=collection.name, created_at=collection.created_at,
        rows_by_state=dict(Counter(r.state.value for r in out)),
        settled=all(r.state in SETTLED for r in out), rows=out)
