"""An image the burned-in text gate held: an admin looks at a thumbnail of its
de-identified file, then releases it (its pixels are judged safe) or drops it
(it is never sent). Each is audited: the event names the image, never a value.
The thumbnail may show the very text that held the image, so only admins see it."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel
from pydicom import dcmread
from sqlmodel import Session

from relay_api.audit import audit_read, audited, resource
from relay_api.deps import Admin, Id, RuntimeDep, SessionDep
from relay_shared import outbox, series_state
from relay_shared.db import session_scope
from relay_shared.models import Image, Series, Stage, Status
from relay_shared.pixels import release
from relay_shared.pixels.records import held_path
from relay_shared.pixels.thumbnail import NoThumbnail, render_thumbnail
from relay_shared.reasons import keep_text

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/images", tags=["images"])


class Released(BaseModel):
    image_id: int
    series_id: int
    status: Status
    series_status: Status
    queued_for_send: bool


@router.post("/{image_id}/release", response_model=Released,
             responses={404: {"description": "No such image"},
                        409: {"description": "The image is not held, or its series is busy"}})
async def release_image(image_id: Id, rt: RuntimeDep, caller: Admin) -> Released:
    """Send a held image after all. Allowed once its series is DONE (it is sent on its
    own) or FAILED in the send stage (the series' retry sends it too)."""
    with session_scope(rt.engine) as session:
        image = session.get(Image, image_id)
        if image is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"image {image_id} does not exist")
        series = session.get(Series, image.series_id)
        assert series is not None
        _check(image, series)
        try:
            release(rt.store, image)
        except FileNotFoundError:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"the held file of image {image_id} is no longer there") from None
        series_state.image_to(image, Status.DONEPROCESSING)
        image.pixel_gate = "released"
        queued = series.status is Status.DONE
        series_state.released(session, series, f"image {image_id} released from the "
                              "burned-in text hold", resend=queued, by=caller.describe())
        if queued:
            outbox.enqueue(session, rt.settings.send_queue, series)
        audited(session, caller, "released", f"image {image_id} of series {series.id} "
                "released from the burned-in text hold", series.id,
                (resource(f"/api/v1/images/{image_id}"),))
        answer = Released(image_id=image_id, series_id=image.series_id, status=image.status,
                          series_status=series.status, queued_for_send=queued)
    log.info("held image released", extra={"series_id": answer.series_id, "image_id": image_id})
    if queued:
        try:
            await outbox.flush(rt.engine, rt.bus)
        except Exception:  # committed: the outbox sweep publishes it once the bus is back
            log.warning("release queued, publishing deferred", exc_info=True)
    return answer


def _check(image: Image, series: Series) -> None:
    if image.status is not Status.QUARANTINED or image.pixel_gate != "held":
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"image {image.id} is {image.status.value}; only an image held "
                            "for burned-in text can be released")
    if series.status is not Status.DONE and not (
            series.status is Status.FAILED and series.stage is Stage.SEND):
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"series {series.id} is {series.status.value}; release its images "
                            "once it is DONE (or FAILED while sending)")


class Dropped(BaseModel):
    image_id: int
    series_id: int
    status: Status
    pixel_gate: str


HELD_ONLY: dict[int | str, dict[str, object]] = {
    404: {"description": "No such image"},
    409: {"description": "The image is not held for burned-in text, or its file is gone"}}


def _held_image(session: Session, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"image {image_id} does not exist")
    if image.status is not Status.QUARANTINED or image.pixel_gate != "held":
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"image {image_id} is not held for burned-in text")
    return image


@router.get("/{image_id}/thumbnail", response_class=Response, responses={
    **HELD_ONLY, 200: {"content": {"image/png": {}}, "description": "A PNG"}})
def held_thumbnail(image_id: Id, rt: RuntimeDep, session: SessionDep,
                   caller: Admin) -> Response:
    """A small PNG of a held image, drawn from its de-identified file (CT and MR
    windowed), to look at before releasing or dropping it."""
    # A plain function: FastAPI runs it in a worker thread, off the loop that in
    # `relay up` also drives the workers, for the database and the drawing alike.
    image = _held_image(session, image_id)
    # The held file's place is derived from the ids, never read from the row.
    path = held_path(rt.store, image.series_id, image_id)
    try:
        png = _draw(path)
    except FileNotFoundError:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"the held file of image {image_id} is no longer there") from None
    except NoThumbnail as exc:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"image {image_id} has no thumbnail: {exc.reason}") from None
    audit_read(session, caller, f"thumbnail of held image {image_id}", image.series_id)
    return Response(png, media_type="image/png", headers={"cache-control": "no-store"})


def _draw(path: Path) -> bytes:
    try:
        ds = dcmread(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        keep_text(exc, "reading a held image for its thumbnail")
        raise NoThumbnail(f"the file cannot be read as DICOM: {type(exc).__name__}") from None
    try:
        return render_thumbnail(ds)
    except NoThumbnail:
        raise
    except Exception as exc:  # attributes that contradict the pixel data, and the like
        keep_text(exc, "drawing a held image's thumbnail")
        raise NoThumbnail(f"its pixels cannot be drawn: {type(exc).__name__}") from None


@router.post("/{image_id}/drop", response_model=Dropped, responses=HELD_ONLY)
def drop_image(image_id: Id, rt: RuntimeDep, caller: Admin) -> Dropped:
    """Keep a held image back for good: it stays QUARANTINED and its held file is
    removed; the rest of its series is not touched."""
    with session_scope(rt.engine) as session:
        image = _held_image(session, image_id)
        series = session.get(Series, image.series_id)
        assert series is not None
        series_state.image_dropped(session, series, image, by=caller.describe())
        image.pixel_gate, image.quarantine_path = "dropped", None
        audited(session, caller, "ignored", f"held image {image_id} of series {series.id} "
                "dropped", series.id, (resource(f"/api/v1/images/{image_id}"),))
        answer = Dropped(image_id=image_id, series_id=image.series_id, status=image.status,
                         pixel_gate="dropped")
    held_path(rt.store, answer.series_id, image_id).unlink(missing_ok=True)
    log.info("held image dropped", extra={"series_id": answer.series_id, "image_id": image_id})
    return answer
