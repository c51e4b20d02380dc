"""The review gate: series that wait for a person before they leave, what the person
sees of them, and the decision.

A reviewer (or an admin) sees every attribute left in each de-identified instance
with the action that made it, and each frame as a picture rendered from the
de-identified file. An admin also sees what each attribute was before: the values
sealed at de-identification, opened for that admin only, and the read is audited.
Approve queues the series for the sender once, however many times or by however
many reviewers it is clicked; reject quarantines it with the reviewer's reason.
"""

from __future__ import annotations

import logging
import shutil
import threading
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, Field
from pydicom import dcmread
from sqlmodel import Session, col, delete, select
from starlette.concurrency import run_in_threadpool

from relay_api import queries, thumbnails
from relay_api.audit import audit_read, audited, resource
from relay_api.auth import Role
from relay_api.deps import Caller, Id, Reviewer, RuntimeDep, SessionDep
from relay_api.schemas import EventOut, SeriesSummary
from relay_shared import outbox, series_lock, series_state
from relay_shared.db import session_scope
from relay_shared.models import Event, Image, ReviewOriginal, Series, Status
from relay_shared.review_attributes import attributes_left, with_before
from relay_shared.runtime import Runtime
from relay_shared.vault import VaultError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/review", tags=["review"])
DECISIONS = ("review", "approved", "rejected")
# On SQLite the relay is one process: this lock serialises decisions there, where
# series_lock (PostgreSQL's advisory lock, across processes) does nothing.
_deciding = threading.Lock()
Frame = Annotated[int, Path(ge=0, le=100_000)]


class ReviewImage(BaseModel):
    id: int
    sop_uid: str | None = Field(description="The de-identified SOPInstanceUID")
    frames: int = Field(description="Frames that can be drawn (0: none)")
    pixel_gate: str | None


class ReviewSeries(BaseModel):
    series: SeriesSummary
    images: list[ReviewImage]
    events: list[EventOut] = Field(description="The series' review events: why it waits, "
                                   "and who decided, when")


class AttributeOut(BaseModel):
    path: str = Field(description="Its tag, inside sequences item by item")
    keyword: str
    vr: str
    value: str = Field(description="As it leaves (de-identified); long text is cut")
    action: str = Field(description="kept, replaced, date shifted, cleaned, emptied, "
                        "removed, added by the relay, kept (private)")
    before: str | None = Field(None, description="Admin only: the value before "
                               "de-identification")


class Rejection(BaseModel):
    reason: str = Field(min_length=3, max_length=500,
                        description="Why the series must not leave. Shown to every reader "
                        "of the series: describe the problem, never quote a patient's value")


class Decision(BaseModel):
    series_id: int
    status: Status
    decision: str
    queued_for_send: bool


@router.get("", response_model=list[SeriesSummary])
def waiting(session: SessionDep, _: Reviewer) -> list[SeriesSummary]:
    """The series waiting for review, the longest waiting first."""
    rows = list(session.exec(select(Series).where(Series.status == Status.REVIEW)
                             .order_by(col(Series.updated_at), col(Series.id)).limit(500)))
    return queries.summaries(session, rows)


@router.get("/{series_id}", response_model=ReviewSeries,
            responses={404: {"description": "No such series"}})
def review_series(series_id: Id, rt: RuntimeDep, session: SessionDep,
                  _: Reviewer) -> ReviewSeries:
    series = _series(session, series_id)
    (summary,) = queries.summaries(session, [series])
    images = [ReviewImage(id=image.id, sop_uid=image.sop_uid, pixel_gate=image.pixel_gate,
                          frames=_frames(rt, image))
              for image in _to_send(session, series_id) if image.id is not None]
    events = [e for e in queries.events_of(session, series_id) if e.kind in DECISIONS]
    return ReviewSeries(series=summary, images=images, events=events)


@router.get("/{series_id}/images/{image_id}/attributes", response_model=list[AttributeOut],
            responses={404: {"description": "No such image of the series"}})
def attributes(series_id: Id, image_id: Id, rt: RuntimeDep, session: SessionDep,
               caller: Reviewer) -> list[AttributeOut]:
    series = _series(session, series_id)
    path = rt.store.deidentified(series_id, _image(session, series_id, image_id).id or 0)
    if not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"the de-identified file of image {image_id} is no longer kept")
    rows = attributes_left(dcmread(path, stop_before_pixels=True), series.audit or {})
    if caller.role.may(Role.ADMIN):
        rows = with_before(rows, _before(rt, session, image_id))
        audit_read(session, caller, f"values before de-identification of image {image_id}",
                   series_id)
    return [AttributeOut(**vars(row)) for row in rows]


@router.get("/{series_id}/images/{image_id}/frames/{frame}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}},
                       404: {"description": "No such image, frame, or no picture in it"}})
def frame_picture(series_id: Id, image_id: Id, frame: Frame, rt: RuntimeDep,
                  session: SessionDep, _: Reviewer) -> Response:
    _series(session, series_id)
    path = rt.store.deidentified(series_id, _image(session, series_id, image_id).id or 0)
    if not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"the de-identified file of image {image_id} is no longer kept")
    try:
        png = thumbnails.thumbnail(path, frame)
    except thumbnails.NotAPicture as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"image {image_id}: {exc.reason}") from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/{series_id}/approve", response_model=Decision,
             responses={404: {"description": "No such series"},
                        409: {"description": "The series is not waiting for review"}})
async def approve(series_id: Id, rt: RuntimeDep, caller: Reviewer) -> Decision:
    decision = await run_in_threadpool(_decide, rt, series_id, caller, None)
    try:
        await outbox.flush(rt.engine, rt.bus)
    except Exception:  # committed: the outbox sweep publishes it once the bus is back
        log.warning("approval queued, publishing deferred", exc_info=True)
    return decision


@router.post("/{series_id}/reject", response_model=Decision,
             responses={400: {"description": "The body is not JSON (not even UTF-8)"},
                        404: {"description": "No such series"},
                        409: {"description": "The series is not waiting for review"}})
async def reject(series_id: Id, body: Rejection, rt: RuntimeDep,
                 caller: Reviewer) -> Decision:
    return await run_in_threadpool(_decide, rt, series_id, caller, body.reason.strip())


def _decide(rt: Runtime, series_id: int, caller: Caller, rejection: str | None) -> Decision:
    """Approve (no `rejection`) or reject, once: whoever comes second finds it decided."""
    with _deciding, series_lock.exclusive(rt.engine, series_id), \
            session_scope(rt.engine) as session:
        series = session.get(Series, series_id, with_for_update=True)
        if series is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
        if series.status is not Status.REVIEW:
            raise HTTPException(status.HTTP_409_CONFLICT, _not_waiting(session, series))
        if rejection is None:
            series_state.approved(session, series, caller.describe())
            outbox.enqueue(session, rt.settings.send_queue, series)
        else:
            _quarantine(rt, session, series, rejection, caller)
        session.execute(delete(ReviewOriginal).where(
            col(ReviewOriginal.series_id) == series_id))
        kind = "approved" if rejection is None else "rejected"
        audited(session, caller, kind, f"series {series_id} {kind} after review", series_id,
                (resource(f"/api/v1/review/{series_id}"),))
        return Decision(series_id=series_id, status=series.status, decision=kind,
                        queued_for_send=rejection is None)


def _quarantine(rt: Runtime, session: Session, series: Series, reason: str,
                caller: Caller) -> None:
    assert series.id is not None
    folder = rt.store.quarantine_for(series.id) / "rejected"
    images = _to_send(session, series.id)
    for image in images:
        output = rt.store.deidentified(series.id, image.id or 0)
        if output.exists():
            folder.mkdir(parents=True, exist_ok=True)
            image.quarantine_path = str(shutil.move(output, folder / output.name))
    series_state.review_rejected(session, series, images, reason, caller.describe())


def _not_waiting(session: Session, series: Series) -> str:
    last = session.exec(select(Event).where(Event.series_id == series.id,
                                            col(Event.kind).in_(["approved", "rejected"]))
                        .order_by(col(Event.id).desc())).first()
    told = f"series {series.id} is {series.status.value}, not waiting for review"
    if last is not None:
        told += f"; it was {last.kind} at {_iso(last.at)}"
    return told


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _series(session: Session, series_id: int) -> Series:
    series = session.get(Series, series_id)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
    return series


def _image(session: Session, series_id: int, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.series_id != series_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"image {image_id} is not an image of series {series_id}")
    return image


def _to_send(session: Session, series_id: int) -> list[Image]:
    return list(session.exec(select(Image).where(Image.series_id == series_id,
                                                 Image.status == Status.DONEPROCESSING)
                             .order_by(col(Image.id))))


def _frames(rt: Runtime, image: Image) -> int:
    path = rt.store.deidentified(image.series_id, image.id or 0)
    try:
        return thumbnails.frame_count(path) if path.exists() else 0
    except Exception:  # an unreadable file has no frames to show; its row still does
        return 0


def _before(rt: Runtime, session: Session, image_id: int) -> dict[str, str]:
    row = session.exec(select(ReviewOriginal).where(ReviewOriginal.image_id == image_id)).first()
    if row is None:
        return {}
    try:
        return rt.vault.open(row.key_id, row.sealed)
    except VaultError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "the values before de-identification cannot be opened: "
                            f"{exc.reason}"
                            ) from None
