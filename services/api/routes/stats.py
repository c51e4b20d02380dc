from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.engine import Engine
from sqlmodel import Session

from relay_api import live
from relay_api.deps import Reader, RuntimeDep
from relay_api.schemas import FinishedInterval, Stats, ThroughputHistory
from relay_shared.models import Image, Series
from relay_shared.series_state import IN_FLIGHT

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])


def _from_database(engine: Engine) -> dict[str, object]:
    with Session(engine) as session:
        series = live.status_counts(session, Series)
        return {"series_by_status": series,
                "images_by_status": live.status_counts(session, Image),
                "in_flight": sum(series[s.value] for s in IN_FLIGHT),
                "last_hour": live.throughput(session)}


@router.get("", response_model=Stats)
async def stats(rt: RuntimeDep, _: Reader) -> Stats:
    # The queries run in a thread: in `relay up` this loop also drives the workers.
    counts = await asyncio.to_thread(_from_database, rt.engine)
    return Stats(**counts, queues=await live.queue_depths(rt))  # type: ignore[arg-type]


@router.get("/throughput", response_model=ThroughputHistory)
async def throughput_history(
    rt: RuntimeDep, _: Reader,
    hours: Annotated[int, Query(ge=1, le=72, description="How far back")] = 6,
    interval_minutes: Annotated[int, Query(ge=5, le=240, description="Width of one "
                                           "interval")] = 15,
) -> ThroughputHistory:
    """Series finished per interval by status, for the console's chart."""
    interval = timedelta(minutes=interval_minutes)

    def read() -> list[FinishedInterval]:
        with Session(rt.engine) as session:
            return live.finished_per_interval(session, timedelta(hours=hours), interval)

    intervals = await asyncio.to_thread(read)
    return ThroughputHistory(interval_seconds=int(interval.total_seconds()),
                             intervals=intervals,
                             queues=await live.queue_depths(rt))
