"""A delivery renamed into incoming is taken when it arrives, not at the next poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from relay_ingest import main
from relay_shared.db import upgrade
from relay_shared.models import Series
from relay_shared.runtime import build_runtime
from relay_shared.settings import load_settings
from tests.support.dicom_factory import Patient, SeriesSpec, write_series

# Far longer than the test waits: only a notice of the rename can explain a delivery
# taken in time.
POLL_SECONDS = 60.0


def _series_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Series)).one())


async def test_a_delivery_renamed_into_incoming_is_taken_without_waiting_for_the_poll(
        tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", scp_port=0,
                             watch_interval=POLL_SECONDS)
    settings.ensure_dirs()
    assert settings.incoming_dir is not None
    upgrade(settings.sqlalchemy_url)
    rt = build_runtime(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(main.run(rt, stop))
    try:
        await asyncio.sleep(1.0)  # its first round is over: it now waits
        for n in range(2):
            partial = settings.incoming_dir / f"ST-{n}.tmp1234"
            write_series(SeriesSpec(Patient(f"MRN-77{n}", "Hodgkin^Dorothy"), instances=2),
                         partial)
            partial.rename(settings.incoming_dir / f"ST-{n}")
            started = time.monotonic()
            while _series_count(rt.engine) < n + 1 and time.monotonic() - started < 10:
                await asyncio.sleep(0.05)
            assert _series_count(rt.engine) == n + 1, f"delivery {n} not taken in 10 s"
            assert not (settings.incoming_dir / f"ST-{n}").exists()
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        rt.engine.dispose()
