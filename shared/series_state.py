"""Series state changes shared by every stage."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session

from relay_shared.db import record_event, session_scope
from relay_shared.models import Series, Stage, Status, utcnow

log = logging.getLogger(__name__)


def mark_failed(engine: Engine, series_id: int, error: str, stage: Stage) -> None:
    """The last attempt failed: the series waits, FAILED with its error, for a retry."""
    with session_scope(engine) as session:
        series = session.get(Series, series_id)
        if series is None:
            return
        series.status, series.stage, series.error = Status.FAILED, stage, error
        series.updated_at = utcnow()
        record_event(session, series_id, stage.value, "failed", error)


def note_failed_attempt(engine: Engine, series_id: int, stage: Stage, attempt: int,
                        error: str) -> None:
    """Best effort: show the last error while the series waits for its next attempt."""
    try:
        with session_scope(engine) as session:
            series = session.get(Series, series_id)
            if series is None:
                return
            series.error = f"attempt {attempt} failed, will retry: {error}"
            record_event(session, series_id, stage.value, "attempt_failed", series.error)
    except Exception:  # the database may be the thing that is down
        log.debug("could not record the failed attempt", exc_info=True)


def set_aside(session: Session, series: Series, status: Status, reason: str | None,
              service: str) -> None:
    """A project's decision, not a failure: IGNORED (dropped) or HELD (for a person)."""
    assert status in (Status.IGNORED, Status.HELD)
    series.status, series.stage, series.error = status, Stage.DEID, reason
    series.attempts, series.updated_at = 0, utcnow()
    record_event(session, series.id, service, status.value.lower(), reason)
