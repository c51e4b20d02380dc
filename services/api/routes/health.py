from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response

from relay_api import live
from relay_api.deps import RuntimeDep
from relay_shared.metrics import CONTENT_TYPE, exposition
from relay_shared.runtime import database_ok

log = logging.getLogger(__name__)
router = APIRouter(tags=["probes"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is down"}})
async def readyz(rt: RuntimeDep, response: Response) -> dict[str, bool]:
    checks = {"database": await asyncio.to_thread(database_ok, rt.engine),
              "bus": await rt.bus.is_healthy()}
    response.status_code = 200 if all(checks.values()) else 503
    return checks


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    await live.queue_depths(rt)
    try:
        await asyncio.to_thread(live.refresh_database_gauges, rt.engine)
    except Exception:  # the database is down: serve the process's own counters anyway
        log.warning("database gauges unavailable", exc_info=True)
    return Response(exposition(), media_type=CONTENT_TYPE)
