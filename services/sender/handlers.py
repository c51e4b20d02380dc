"""What sender does with one de-identified series: deliver, prove receipt, clean up.

Idempotent: sending an instance a destination already holds changes nothing,
and a series already SENT only needs its clean-up finished.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlmodel import col, insert, select, update

from relay_sender.destinations import (
    NOT_A_UID,
    Destination,
    DestinationError,
    OutgoingInstance,
    OutgoingSeries,
    valid_uid,
)
from relay_shared import series_lock, series_state
from relay_shared.db import record_event, session_scope
from relay_shared.deid.streamcopy import load_header
from relay_shared.metrics import DESTINATION_ERRORS, INSTANCES_SENT
from relay_shared.models import Delivery, DeliveryState, Image, Series, Stage, Status, utcnow
from relay_shared.paths import WorkStore

log = logging.getLogger(__name__)
SERVICE = "sender"
RESEND_ROUNDS = 2


# Called once every destination has proved it holds the series, before it is SENT: a
# failure there (the manifest could not be placed) retries the series, which sends
# nothing again but calls it once more.
AfterVerified = Callable[[OutgoingSeries, Sequence[Destination]], None]


@dataclass(frozen=True)
class SendContext:
    engine: Engine
    store: WorkStore
    destinations: Sequence[Destination]
    after_verified: AfterVerified | None = None  # the signed manifest (manifests.py)


def send_series(ctx: SendContext, series_id: int) -> None:
    # A second sender given the same series waits here, then finds it sent: never
    # two senders on one series, which would send its study twice.
    with series_lock.exclusive(ctx.engine, series_id):
        _send_series(ctx, series_id)


def _send_series(ctx: SendContext, series_id: int) -> None:
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
        if not outgoing.instances:
            _mark_failed(ctx, series_id, NOT_A_UID)
            return
        for destination in ctx.destinations:
            _deliver_unconfirmed(ctx, destination, outgoing)
        if ctx.after_verified is not None:
            ctx.after_verified(outgoing, ctx.destinations)
        _mark(ctx, series_id, Status.SENT, f"{len(images)} image(s) confirmed at "
              + ", ".join(d.name for d in ctx.destinations))
    shutil.rmtree(ctx.store.series_dir(series_id), ignore_errors=True)
    _mark(ctx, series_id, Status.DONE, "working files removed")
    log.info("series done", extra={"series_id": series_id, "images": len(images)})


def _outgoing(ctx: SendContext, series_id: int, images: list[Image]) -> OutgoingSeries:
    """The images to send; one whose UIDs could not name a path, object or URL
    fails here, with a fixed reason, and the rest go on."""
    instances = []
    refused = []
    study_uid = series_uid = ""
    for image in images:
        assert image.id is not None
        path = ctx.store.deidentified(series_id, image.id)
        # The relay's own header reader: pydicom's cost more per image than sending it.
        header = load_header(path)
        uids = [header.get(k).strip("\x00 ") for k in
                ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
        if not all(valid_uid(uid) for uid in uids):
            refused.append(image.id)
            continue
        study_uid, series_uid = uids[0], uids[1]
        instances.append(OutgoingInstance(image.id, uids[2], path))
    if refused:
        _fail_images(ctx, series_id, refused, NOT_A_UID)
    return OutgoingSeries(series_id, study_uid, series_uid, instances)


def _fail_images(ctx: SendContext, series_id: int, image_ids: list[int], reason: str) -> None:
    with session_scope(ctx.engine) as session:
        for image_id in image_ids:
            image = session.get(Image, image_id)
            assert image is not None
            series_state.image_to(image, Status.FAILED, reason)
        record_event(session, series_id, SERVICE, "refused", f"{len(image_ids)} image(s): {reason}")
    log.error("images refused before sending", extra={"series_id": series_id,
                                                      "images": len(image_ids)})


def _mark_failed(ctx: SendContext, series_id: int, reason: str) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series_state.failed(session, series, Stage.SEND, reason)


def _deliver_unconfirmed(ctx: SendContext, destination: Destination,
                         series: OutgoingSeries) -> None:
    """Deliver the images this destination has not confirmed yet (all of them but on
    a retry), and record its answer for each."""
    confirmed = _confirmed(ctx, series.series_id, destination.name)
    pending = replace(series, instances=[i for i in series.instances
                                         if i.image_id not in confirmed])
    if pending.instances and destination.sends_whole_series:
        pending = series
    if not pending.instances:
        log.info("series already confirmed at destination", extra={
            "series_id": series.series_id, "destination": destination.name})
        return
    try:
        _deliver(destination, pending)
    except NotHeld as exc:
        _record(ctx, destination.name, pending, str(exc), exc.missing)
        raise
    except DestinationError as exc:
        _record(ctx, destination.name, pending, str(exc), None)
        raise
    _record(ctx, destination.name, pending, None, set())
    INSTANCES_SENT.labels(destination=destination.name).inc(len(pending.instances))


class NotHeld(DestinationError):
    def __init__(self, message: str, missing: set[str]) -> None:
        super().__init__(message)
        self.missing = missing


def _deliver(destination: Destination, series: OutgoingSeries) -> None:
    """Send, then ask; resend what is missing; give up (for a retry) if still missing."""
    pending = series
    for _ in range(RESEND_ROUNDS):
        destination.send(pending)
        missing = destination.missing(series)
        if not missing:
            return
        pending = replace(series, instances=[i for i in series.instances
                                             if i.sop_instance_uid in missing])
    raise NotHeld(f"{destination.name} does not hold {len(missing)} of "
                  f"{len(series.instances)} instance(s) after resending", missing)


def _confirmed(ctx: SendContext, series_id: int, destination: str) -> set[int]:
    with session_scope(ctx.engine) as session:
        return set(session.exec(select(Delivery.image_id).where(
            Delivery.series_id == series_id, Delivery.destination == destination,
            Delivery.state == DeliveryState.CONFIRMED)))


def _record(ctx: SendContext, destination: str, series: OutgoingSeries, error: str | None,
            missing: set[str] | None) -> None:
    """Each image's result at the destination: confirmed, or failed with the error.
    `missing` None: the attempt failed before the destination could be asked, so no
    image of it counts as confirmed."""
    if error is not None:
        DESTINATION_ERRORS.labels(destination=destination).inc()
    now = utcnow()
    by_image = {i.image_id: i for i in series.instances}

    def result(instance: OutgoingInstance) -> dict[str, object]:
        held = missing is not None and instance.sop_instance_uid not in missing
        return {"state": DeliveryState.CONFIRMED if held else DeliveryState.FAILED,
                "error": None if held else error, "confirmed_at": now if held else None,
                "updated_at": now}

    with session_scope(ctx.engine) as session:
        rows = {d.image_id: d for d in session.exec(select(Delivery).where(
            col(Delivery.image_id).in_(list(by_image)), Delivery.destination == destination))}
        for image_id, row in rows.items():
            for name, value in result(by_image[image_id]).items():
                setattr(row, name, value)
            row.attempts += 1
            session.add(row)
        # A first attempt's rows in one statement, without a model object each, as
        # ingest records a delivery's images.
        first = [{"image_id": image_id, "series_id": series.series_id,
                  "destination": destination, "attempts": 1, **result(instance)}
                 for image_id, instance in by_image.items() if image_id not in rows]
        if first:
            session.execute(insert(Delivery), first)


def _mark(ctx: SendContext, series_id: int, status: Status, detail: str) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        previous = Status.DONEPROCESSING if status is Status.SENT else Status.SENT
        # What series_state.image_to sets, in one statement for the series: loading and
        # updating each image, twice a series, was most of the sender's database time.
        session.execute(update(Image).where(
            col(Image.series_id) == series_id, col(Image.status) == previous
        ).values(status=status, reason=None, updated_at=utcnow())
         .execution_options(synchronize_session=False))
        (series_state.sent if status is Status.SENT else series_state.done)(
            session, series, detail)
