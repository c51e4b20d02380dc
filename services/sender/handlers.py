"""What sender does with one de-identified series: deliver, prove receipt, clean up.

Idempotent: sending an instance a destination already holds changes nothing,
and a series already SENT only needs its clean-up finished.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom import dcmread
from sqlalchemy.engine import Engine
from sqlmodel import select

from relay_sender.destinations import (
    Destination,
    DestinationError,
    OutgoingInstance,
    OutgoingSeries,
)
from relay_shared.db import record_event, session_scope
from relay_shared.metrics import INSTANCES_SENT, SERIES_FINISHED
from relay_shared.models import Image, Series, Status, utcnow
from relay_shared.paths import WorkStore

log = logging.getLogger(__name__)
SERVICE = "sender"
RESEND_ROUNDS = 2


@dataclass(frozen=True)
class SendContext:
    engine: Engine
    store: WorkStore
    destinations: Sequence[Destination]


def send_series(ctx: SendContext, series_id: int) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        if series is None or series.status not in (Status.DONEPROCESSING, Status.SENT):
            return  # a redelivery of work already done
        already_sent = series.status is Status.SENT
        images = list(session.exec(select(Image).where(
            Image.series_id == series_id, Image.status == (
                Status.SENT if already_sent else Status.DONEPROCESSING))))
    if not already_sent:
        outgoing = _outgoing(ctx, series_id, images)
        for destination in ctx.destinations:
            _deliver(destination, outgoing)
        _mark(ctx, series_id, Status.SENT, f"{len(images)} image(s) confirmed at "
              + ", ".join(d.name for d in ctx.destinations))
        for destination in ctx.destinations:
            INSTANCES_SENT.labels(destination=destination.name).inc(len(images))
    shutil.rmtree(ctx.store.series_dir(series_id), ignore_errors=True)
    _mark(ctx, series_id, Status.DONE, "working files removed")
    SERIES_FINISHED.labels(status="DONE").inc()
    log.info("series done", extra={"series_id": series_id, "images": len(images)})


def _outgoing(ctx: SendContext, series_id: int, images: list[Image]) -> OutgoingSeries:
    instances = []
    study_uid = series_uid = ""
    for image in images:
        assert image.id is not None
        path = ctx.store.deidentified(series_id, image.id)
        header = dcmread(path, stop_before_pixels=True, specific_tags=[
            "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"])
        study_uid, series_uid = str(header.StudyInstanceUID), str(header.SeriesInstanceUID)
        instances.append(OutgoingInstance(image.id, str(header.SOPInstanceUID), path))
    return OutgoingSeries(series_id, study_uid, series_uid, instances)


def _deliver(destination: Destination, series: OutgoingSeries) -> None:
    """Send, then ask; resend what is missing; give up (for a retry) if still missing."""
    pending = series
    for _ in range(RESEND_ROUNDS):
        destination.send(pending)
        missing = destination.missing(series)
        if not missing:
            return
        pending = OutgoingSeries(series.series_id, series.study_instance_uid,
                                 series.series_instance_uid,
                                 [i for i in series.instances if i.sop_instance_uid in missing])
    raise DestinationError(f"{destination.name} does not hold {len(missing)} of "
                           f"{len(series.instances)} instance(s) after resending")


def _mark(ctx: SendContext, series_id: int, status: Status, detail: str) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        previous = Status.DONEPROCESSING if status is Status.SENT else Status.SENT
        for image in session.exec(select(Image).where(Image.series_id == series_id,
                                                      Image.status == previous)):
            image.status, image.updated_at = status, utcnow()
        series.status, series.error, series.updated_at = status, None, utcnow()
        record_event(session, series_id, SERVICE, status.value.lower(), detail)
