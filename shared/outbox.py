"""Commit first, publish after: the transactional outbox.

A handler adds an OutboxMessage in the same transaction as its work. After the
commit the row is published and deleted. A crash between the two leaves the
row, and the next flush (any process, at start-up or on its interval) sends it:
a message can go twice, never zero times, and every handler is idempotent.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from relay_shared import series_lock
from relay_shared.bus import Bus
from relay_shared.db import session_scope
from relay_shared.messages import SeriesMessage
from relay_shared.models import OutboxMessage, Series, Stage, utcnow
from relay_shared.series_state import PENDING_AT


def enqueue(session: Session, queue: str, series: Series) -> None:
    assert series.id is not None
    session.add(OutboxMessage(queue=queue, series_id=series.id, trace_id=series.trace_id))


async def flush(engine: Engine, bus: Bus, older_than: timedelta | None = None,
                series_id: int | None = None) -> int:
    """Publish pending rows; with ``older_than``, only rows nobody flushed in that time;
    with ``series_id``, only that series' rows (what a worker just committed: another
    worker's rows are its own to publish, and two publishing one row send it twice)."""
    with Session(engine) as session:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if older_than is not None:
            query = query.where(col(OutboxMessage.created_at) < utcnow() - older_than)
        if series_id is not None:
            query = query.where(col(OutboxMessage.series_id) == series_id)
        pending = list(session.exec(query))
    for row in pending:
        await bus.publish(row.queue, SeriesMessage(series_id=row.series_id,
                                                   trace_id=row.trace_id))
        with session_scope(engine) as session:
            session.execute(delete(OutboxMessage).where(col(OutboxMessage.id) == row.id))
    return len(pending)


WAITING_FOR = PENDING_AT


async def requeue_stuck(engine: Engine, bus: Bus, queues: dict[Stage, str],
                        older_than: timedelta) -> int:
    """Give a message again to series left in a working state with none in flight
    (an in-process bus that died with its messages, a message lost by hand). A series
    a worker is still on (a long one) is left to it: it is not stuck."""
    cutoff = utcnow() - older_than
    stuck: list[tuple[Stage, Series]] = []
    in_hand = series_lock.held(engine)
    with Session(engine) as session:
        for stage, statuses in WAITING_FOR.items():
            query = select(Series).where(Series.stage == stage,
                                         col(Series.status).in_(statuses),
                                         col(Series.updated_at) <= cutoff)
            stuck.extend((stage, series) for series in session.exec(query)
                         if series.id not in in_hand)
    for stage, series in stuck:
        assert series.id is not None
        await bus.publish(queues[stage], SeriesMessage(series_id=series.id,
                                                       trace_id=series.trace_id))
    return len(stuck)
