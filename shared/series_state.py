"""Series state changes shared by every stage."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from relay_shared.db import record_event, session_scope
from relay_shared.models import Series, Stage, Status, utcnow


def mark_failed(engine: Engine, series_id: int, error: str, stage: Stage) -> None:
    """The last attempt failed: the series waits, FAILED with its error, for a retry."""
    with session_scope(engine) as session:
        series = session.get(Series, series_id)
        if series is None:
            return
        series.status, series.stage, series.error = Status.FAILED, stage, error
        series.updated_at = utcnow()
        record_event(session, series_id, stage.value, "failed", error)
