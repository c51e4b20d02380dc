"""A real HTTP identifiers service on loopback, answering after an optional delay."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request

from tests.support.services import free_port, wait_until


@dataclass
class IdentifiersService:
    url: str
    calls: list[dict] = field(default_factory=list)


@contextmanager
def identifiers_service(delay: float = 0.0) -> Iterator[IdentifiersService]:
    app = FastAPI()
    port = free_port()
    service = IdentifiersService(f"http://127.0.0.1:{port}/identifiers")

    @app.post("/identifiers")
    async def identifiers(request: Request) -> dict:
        service.calls.append(await request.json())
        await asyncio.sleep(delay)
        return {"patient_id": f"STUDY-{len(service.calls):04d}", "patient_name": "SUBJECT^ONE",
                "date_shift_days": -42, "accession_number": None, "extra": {}}

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "the identifiers service")
    try:
        yield service
    finally:
        server.should_exit = True
        thread.join(10)
