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

from relay_shared.bus import Bus
from relay_shared.db import session_scope
from relay_shared.messages import SeriesMessage
from relay_shared.models import OutboxMessage, Series, utcnow


def enqueue(session: Session, queue: str, series: Series) -> None:
    assert series.id is not None
    session.add(OutboxMessage(queue=queue, series_id=series.id, trace_id=series.trace_id))


async def flush(engine: Engine, bus: Bus, older_than: timedelta | None = None) -> int:
    """Publish pending rows; with ``older_than``, only rows nobody flushed in that time."""
    with Session(engine) as session:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if older_than is not None:
            query = query.where(col(OutboxMessage.created_at) < utcnow() - older_than)
        pending = list(session.exec(query))
    for row in pending:
        await bus.publish(row.queue, SeriesMessage(series_id=row.series_id,
                                                   trace_id=row.trace_id))
        with session_scope(engine) as session:
            session.execute(delete(OutboxMessage).where(col(OutboxMessage.id) == row.id))
    return len(pending)
