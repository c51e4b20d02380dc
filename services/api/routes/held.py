"""Releasing an image the burned-in text gate held: an admin has looked at it and
judged its pixels safe. Audited: the event names the image, never a value."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from relay_api.audit import audited, resource
from relay_api.deps import Admin, Id, RuntimeDep
from relay_shared import outbox, series_state
from relay_shared.db import session_scope
from relay_shared.models import Image, Series, Stage, Status
from relay_shared.pixels import release

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
