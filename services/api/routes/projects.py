"""Projects: their names for everyone, the whole configuration (secret references,
never secrets) for admins; releasing or dropping a series its project holds."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from sqlmodel import select

from relay_api.audit import audit, resource
from relay_api.auth import Role
from relay_api.deps import Id, Operator, Reader, RuntimeDep
from relay_shared import outbox, series_state
from relay_shared.db import session_scope
from relay_shared.models import Image, Series, Status

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["projects"])


class ProjectsOut(BaseModel):
    names: list[str]
    sha256: str | None
    configuration: dict[str, Any] | None = None


class Decided(BaseModel):
    series_id: int
    project: str | None
    status: Status


@router.get("/projects", response_model=ProjectsOut)
def list_projects(rt: RuntimeDep, caller: Reader) -> ProjectsOut:
    """The projects in force, in the order they are tried. Admins also get the whole
    file as checked: secrets appear only as the names of their variables."""
    projects = rt.projects.current
    out = ProjectsOut(names=list(projects.projects), sha256=projects.sha256)
    if caller.role >= Role.ADMIN and projects.file is not None:
        out.configuration = projects.file.model_dump(mode="json", by_alias=True,
                                                     exclude_none=True)
    return out


CONFLICT: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such series"}, 409: {"description": "The series is not HELD"}}


def _held(session: Any, series_id: int) -> Series:
    series = session.get(Series, series_id)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
    if series.status is not Status.HELD:
        raise HTTPException(status.HTTP_409_CONFLICT, f"series {series_id} is "
                            f"{series.status.value}; only a HELD series can be released "
                            "or dropped")
    return series  # type: ignore[no-any-return]


@router.post("/series/{series_id}/release", response_model=Decided, status_code=202,
             responses=CONFLICT)
async def release_series(series_id: Id, rt: RuntimeDep, caller: Operator) -> Decided:
    """A person has looked: the held series goes on, de-identified by its project."""
    with session_scope(rt.engine) as session:
        series = _held(session, series_id)
        series_state.hold_released(series)
        outbox.enqueue(session, rt.settings.deid_queue, series)
        audit(session, caller, "released", f"held series of project {series.project}",
              series_id, (resource(f"/api/v1/series/{series_id}"),))
        decided = Decided(series_id=series_id, project=series.project, status=series.status)
    log.info("held series released", extra={"series_id": series_id})
    try:
        await outbox.flush(rt.engine, rt.bus)
    except Exception:  # committed: the outbox sweep publishes it once the bus is back
        log.warning("release queued, publishing deferred", exc_info=True)
    return decided


@router.post("/series/{series_id}/drop", response_model=Decided, responses=CONFLICT)
def drop_series(series_id: Id, rt: RuntimeDep, caller: Operator) -> Decided:
    """The held series goes nowhere: IGNORED, its files removed, its record kept."""
    with session_scope(rt.engine) as session:
        series = _held(session, series_id)
        series_state.hold_dropped(
            series, session.exec(select(Image).where(Image.series_id == series_id)),
            "dropped by an operator while held")
        audit(session, caller, "ignored", "held series dropped", series_id,
              (resource(f"/api/v1/series/{series_id}"),))
        decided = Decided(series_id=series_id, project=series.project, status=series.status)
    shutil.rmtree(rt.store.series_dir(series_id), ignore_errors=True)
    log.info("held series dropped", extra={"series_id": series_id})
    return decided
