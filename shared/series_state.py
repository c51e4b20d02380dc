"""The one place a series or an image changes status.

Every named transition of the pipeline is a function here: it sets the
status (and the stage, the error, the time) and records the event under the
name of the service that makes it, so the audit trail and the API agree on
what happened. The status names are the ones the API shows (they come from
sendit, and clients read them); the sets derived from them are defined here
once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from relay_shared.db import record_event, session_scope
from relay_shared.models import Image, Series, Stage, Status, utcnow

log = logging.getLogger(__name__)

# Work still to be done on the series.
IN_FLIGHT = (Status.NEW, Status.PROCESSING, Status.DONEPROCESSING, Status.SENT)
# No stage will touch the series again unless a person retries it (or, IGNORED,
# ingest receives it again).
SETTLED = (Status.DONE, Status.FAILED, Status.QUARANTINED, Status.IGNORED)
# Ended without reaching the destination.
GIVEN_UP = (Status.FAILED, Status.QUARANTINED)
# What each stage picks up (its queue's series).
PENDING_AT = {Stage.DEID: (Status.NEW, Status.PROCESSING),
              Stage.SEND: (Status.DONEPROCESSING, Status.SENT)}
# Where a retry starts each stage from.
RESTART = {Stage.DEID: Status.NEW, Stage.SEND: Status.DONEPROCESSING}
DROPPED_AFTER_REVIEW = "dropped after review of burned-in text"
# The service that runs each stage: the name its events carry.
SERVICE = {Stage.INGEST: "ingest", Stage.DEID: "deid", Stage.SEND: "sender"}


def _set(series: Series, status: Status, stage: Stage | None = None,
         error: str | None = None) -> None:
    series.status, series.error, series.updated_at = status, error, utcnow()
    if stage is not None:
        series.stage = stage


# -- series ------------------------------------------------------------------

def received(session: Session, series: Series, detail: str, new_images: bool) -> None:
    """Ingest recorded a delivery; with new images the series (again) waits for
    de-identification."""
    if new_images:
        _set(series, Status.NEW, Stage.DEID)
        series.attempts = 0
    record_event(session, series.id, SERVICE[Stage.INGEST], "received", detail)


def rejected(series: Series, reason: str) -> None:
    """Ingest could not make a series of a delivery (nothing readable in it)."""
    _set(series, Status.FAILED, Stage.INGEST, reason)


def started(session: Session, series: Series, detail: str) -> None:
    _set(series, Status.PROCESSING, error=series.error)
    series.attempts += 1
    record_event(session, series.id, SERVICE[Stage.DEID], "started", detail)


def held(session: Session, series: Series, reason: str) -> None:
    """De-identification stopped for a person to decide (shown as FAILED with the reason)."""
    _set(series, Status.FAILED, Stage.DEID, reason)
    record_event(session, series.id, SERVICE[Stage.DEID], "held", reason)


def quarantined(session: Session, series: Series, reason: str) -> None:
    _set(series, Status.QUARANTINED, Stage.DEID, reason)
    record_event(session, series.id, SERVICE[Stage.DEID], "quarantined", reason)


def deidentified(session: Session, series: Series, detail: str) -> None:
    _set(series, Status.DONEPROCESSING, Stage.SEND)
    record_event(session, series.id, SERVICE[Stage.DEID], "deidentified", detail)


def awaiting_review(session: Session, series: Series, detail: str) -> None:
    """De-identified, and its project wants a person to look before it leaves: it
    waits, queued for nothing, until a reviewer decides."""
    _set(series, Status.REVIEW, Stage.SEND)
    record_event(session, series.id, SERVICE[Stage.DEID], "review", detail)


def approved(session: Session, series: Series, by: str) -> None:
    """A reviewer let the series go: it waits for the sender, as after de-identification.
    The caller queues it, in the same transaction."""
    assert series.status is Status.REVIEW
    _set(series, Status.DONEPROCESSING, Stage.SEND)
    record_event(session, series.id, "api", "approved", by)


def review_rejected(session: Session, series: Series, images: Iterable[Image], reason: str,
                    by: str) -> None:
    """A reviewer stopped the series: QUARANTINED with the reviewer's reason, every image
    that was to go with it."""
    assert series.status is Status.REVIEW
    _set(series, Status.QUARANTINED, Stage.SEND, f"rejected in review: {reason}")
    for image in images:
        if image.status is Status.DONEPROCESSING:
            image_to(image, Status.QUARANTINED, "rejected in review")
    record_event(session, series.id, "api", "rejected", f"{reason} {by}")


def sent(session: Session, series: Series, detail: str) -> None:
    _set(series, Status.SENT)
    record_event(session, series.id, SERVICE[Stage.SEND], "sent", detail)


def done(session: Session, series: Series, detail: str) -> None:
    _set(series, Status.DONE)
    record_event(session, series.id, SERVICE[Stage.SEND], "done", detail)


def retried(session: Session, series: Series, by: str) -> None:
    """A person asked for the failed stage again, from its start; `by` names who, as
    the audit trail shows it."""
    detail = f"from stage {series.stage.value} {by}"
    _set(series, RESTART[series.stage], error=series.error)
    series.attempts = 0
    record_event(session, series.id, "api", "retry", detail)


def released(session: Session, series: Series, detail: str, resend: bool, by: str) -> None:
    """A person released an image held for burned-in text; with `resend`, the
    series (already DONE without it) goes back to the sender. `by` names who."""
    if resend:
        _set(series, Status.DONEPROCESSING, Stage.SEND, series.error)
    record_event(session, series.id, "api", "released", f"{detail} {by}")


def image_dropped(session: Session, series: Series, image: Image, by: str) -> None:
    """A person looked at an image held for burned-in text and kept it back: it stays
    QUARANTINED, never to be sent. `by` names who."""
    image_to(image, Status.QUARANTINED, DROPPED_AFTER_REVIEW)
    record_event(session, series.id, "api", "dropped",
                 f"image {image.id} {DROPPED_AFTER_REVIEW} {by}")


def failed(session: Session, series: Series, stage: Stage, error: str) -> None:
    _set(series, Status.FAILED, stage, error)
    record_event(session, series.id, SERVICE[stage], "failed", error)


def mark_failed(engine: Engine, series_id: int, error: str, stage: Stage) -> None:
    """The last attempt failed: the series waits, FAILED with its error, for a retry."""
    with session_scope(engine) as session:
        series = session.get(Series, series_id)
        if series is not None:
            failed(session, series, stage, error)


def note_failed_attempt(engine: Engine, series_id: int, stage: Stage, attempt: int,
                        error: str) -> None:
    """Best effort: show the last error while the series waits for its next attempt."""
    try:
        with session_scope(engine) as session:
            series = session.get(Series, series_id)
            if series is None:
                return
            series.error = f"attempt {attempt} failed, will retry: {error}"
            record_event(session, series_id, SERVICE[stage], "attempt_failed", series.error)
    except Exception:  # the database may be the thing that is down
        log.debug("could not record the failed attempt", exc_info=True)


def set_aside(session: Session, series: Series, status: Status, reason: str | None,
              service: str) -> None:
    """A project's decision, not a failure: IGNORED (dropped) or HELD (for a person)."""
    assert status in (Status.IGNORED, Status.HELD)
    series.status, series.stage, series.error = status, Stage.DEID, reason
    series.attempts, series.updated_at = 0, utcnow()
    record_event(session, series.id, service, status.value.lower(), reason)


def hold_released(series: Series) -> None:
    """A person let a HELD series go on: it waits for de-identification again. The
    route records who, with the token's name."""
    _set(series, Status.NEW, Stage.DEID)
    series.attempts = 0


def hold_dropped(series: Series, images: Iterable[Image], reason: str) -> None:
    """A person sent a HELD series nowhere: IGNORED, with every image."""
    _set(series, Status.IGNORED, error=reason)
    for image in images:
        image_to(image, Status.IGNORED)


# -- images ------------------------------------------------------------------

def image_to(image: Image, status: Status, reason: str | None = None) -> None:
    """An image's status: NEW on arrival, DONEPROCESSING or FAILED after
    de-identification, QUARANTINED when held or leaking, SENT and DONE with
    its series."""
    image.status, image.reason, image.updated_at = status, reason, utcnow()
