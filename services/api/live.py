"""What the api reads at request time: queue depths from the bus, counts from the database.

Queue depths are a property of the broker, so the api alone reports them (one
series per queue, not one per worker). It declares the relay's queues first:
a bus only reports queues it knows, and declaring is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import distinct, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_api.schemas import FinishedInterval, Throughput
from relay_shared.metrics import (
    DEFAULT_PROJECT,
    IMAGES_BY_STATUS,
    QUEUE_DEPTH,
    REVIEW_OLDEST_SECONDS,
    SERIES_AWAITING_REVIEW,
    SERIES_BY_STATUS,
)
from relay_shared.models import Event, Image, Series, Status, utcnow
from relay_shared.runtime import Runtime

log = logging.getLogger(__name__)
BUS_TIMEOUT = 5.0
THROUGHPUT_KINDS = {"received": "series_received", "deidentified": "series_deidentified",
                    "done": "series_done", "failed": "series_failed"}


async def queue_depths(rt: Runtime) -> dict[str, int] | None:
    known = [rt.settings.deid_queue, rt.settings.send_queue]
    try:
        declare = getattr(rt.bus, "declare", None)
        if declare is not None:
            for queue in known:
                await asyncio.wait_for(declare(queue), BUS_TIMEOUT)
        depths = await asyncio.wait_for(rt.bus.queue_depths(), BUS_TIMEOUT)
    except Exception:  # the bus is down or slow: report "unknown", not an error page
        log.warning("queue depths unavailable", exc_info=True)
        return None
    depths = {queue: 0 for queue in known} | depths
    for queue, depth in depths.items():
        QUEUE_DEPTH.labels(queue=queue).set(depth)
    return depths


def status_counts(session: Session, model: type[Series] | type[Image]) -> dict[str, int]:
    rows = session.exec(select(model.status, func.count()).group_by(model.status))
    counts = {s.value: 0 for s in Status}
    counts.update({str(s): n for s, n in rows})
    return counts


def throughput(session: Session, window: timedelta = timedelta(hours=1)) -> Throughput:
    since = utcnow() - window
    rows = session.exec(select(Event.kind, func.count(distinct(Event.series_id)))  # type: ignore[arg-type]
                        .where(col(Event.at) >= since,
                               col(Event.kind).in_(list(THROUGHPUT_KINDS)))
                        .group_by(Event.kind))
    counts = {field: 0 for field in THROUGHPUT_KINDS.values()}
    counts.update({THROUGHPUT_KINDS[kind]: n for kind, n in rows})
    images_done = session.exec(select(func.count()).select_from(Image).where(
        Image.status == Status.DONE, col(Image.updated_at) >= since)).one()
    return Throughput(window_seconds=int(window.total_seconds()), images_done=images_done,
                      **counts)


# The events that end a series' course (for now), by the status they leave it in.
FINISHING_KINDS = {"done": Status.DONE, "failed": Status.FAILED,
                   "quarantined": Status.QUARANTINED, "ignored": Status.IGNORED,
                   "held": Status.HELD}


def finished_per_interval(session: Session, span: timedelta, interval: timedelta,
                          now: datetime | None = None) -> list[FinishedInterval]:
    """Series that reached each finishing status, per interval, over the last `span`;
    intervals are aligned on whole multiples of `interval` so the chart's columns
    keep their place between refreshes. A series counts once per interval and status."""
    step = int(interval.total_seconds())
    now_s = int((now or utcnow()).timestamp())
    end = now_s - now_s % step + step
    count = -(-int(span.total_seconds()) // step)
    start = end - count * step
    since = datetime.fromtimestamp(start, UTC)
    rows = session.exec(select(Event.at, Event.kind, Event.series_id)
                        .where(col(Event.at) >= since,
                               col(Event.kind).in_(list(FINISHING_KINDS))))
    seen: set[tuple[int, str, int | None]] = set()
    tallies: list[dict[str, int]] = [{} for _ in range(count)]
    for at, kind, series_id in rows:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite keeps no offset
        slot = (int(at.timestamp()) - start) // step
        if 0 <= slot < count and (slot, kind, series_id) not in seen:
            seen.add((slot, kind, series_id))
            name = FINISHING_KINDS[kind].value
            tallies[slot][name] = tallies[slot].get(name, 0) + 1
    return [FinishedInterval(start=datetime.fromtimestamp(start + n * step, UTC),
                             finished=tallies[n]) for n in range(count)]


def refresh_database_gauges(engine: Engine) -> None:
    with Session(engine) as session:
        for gauge, model in ((SERIES_BY_STATUS, Series), (IMAGES_BY_STATUS, Image)):
            for name, count in status_counts(session, model).items():
                gauge.labels(status=name).set(count)
        _refresh_review_gauges(session)


_review_projects: set[str] = set()


def _refresh_review_gauges(session: Session) -> None:
    waiting = session.exec(select(Series.project, func.count(), func.min(Series.updated_at))
                           .where(Series.status == Status.REVIEW)
                           .group_by(Series.project)).all()
    # A project whose last series was decided reads 0, not its last count.
    counts = dict.fromkeys(_review_projects, 0)
    oldest = None
    for project, count, since in waiting:
        counts[project or DEFAULT_PROJECT] = count
        since = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        oldest = since if oldest is None or since < oldest else oldest
    for project, count in counts.items():
        SERIES_AWAITING_REVIEW.labels(project=project).set(count)
    _review_projects.update(counts)
    REVIEW_OLDEST_SECONDS.set((utcnow() - oldest).total_seconds() if oldest else 0)
