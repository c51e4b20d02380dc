from __future__ import annotations

from fastapi import APIRouter

from relay_api import live
from relay_api.deps import Reader, RuntimeDep, SessionDep
from relay_api.schemas import Stats
from relay_shared.models import Image, Series, Status

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])
IN_FLIGHT = (Status.NEW, Status.PROCESSING, Status.DONEPROCESSING, Status.SENT)


@router.get("", response_model=Stats)
async def stats(session: SessionDep, rt: RuntimeDep, _: Reader) -> Stats:
    series = live.status_counts(session, Series)
    return Stats(series_by_status=series, images_by_status=live.status_counts(session, Image),
                 in_flight=sum(series[s.value] for s in IN_FLIGHT),
                 last_hour=live.throughput(session), queues=await live.queue_depths(rt))
