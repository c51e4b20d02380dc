"""One worker at a time on a series: the PostgreSQL advisory lock itself, a holder
that dies, and the sweep leaving a series in a worker's hands alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from relay_shared import outbox, series_lock
from relay_shared.bus import InProcessBus, RetryPolicy
from relay_shared.db import make_engine, session_scope, upgrade
from relay_shared.models import Series, Stage, Status, utcnow
from tests.support.services import wait_until


def waiting_for_lock(engine: Engine) -> int:
    """How many sessions wait for a series' lock now."""
    with engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = :namespace"), {"namespace": series_lock.NAMESPACE}).scalar_one())


def test_a_second_holder_waits_until_the_first_lets_go(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    second_has_it = threading.Event()

    def second() -> None:
        with series_lock.exclusive(engine, 41):
            second_has_it.set()

    with series_lock.exclusive(engine, 41):
        assert series_lock.held(engine) == {41}
        with series_lock.exclusive(engine, 42):  # another series is not held up
            assert series_lock.held(engine) == {41, 42}
        worker = threading.Thread(target=second)
        worker.start()
        wait_until(lambda: waiting_for_lock(engine) == 1, 10, "the second to wait")
        assert not second_has_it.is_set()
    worker.join(timeout=10)
    assert second_has_it.is_set()
    assert series_lock.held(engine) == set()
    engine.dispose()


def test_a_worker_that_dies_lets_go_of_its_series(postgres_url: str, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from relay_shared import series_lock\n"
            "from relay_shared.db import make_engine\n"
            f"with series_lock.exclusive(make_engine({postgres_url!r}), 43):\n"
            "    print('holding', flush=True)\n"
            "    time.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)
    engine = make_engine(postgres_url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert series_lock.held(engine) == {43}
        holder.kill()
        holder.wait(timeout=10)
        wait_until(lambda: not series_lock.held(engine), 10, "the lock to go")
        with series_lock.exclusive(engine, 43):
            assert series_lock.held(engine) == {43}
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        engine.dispose()


def test_the_sweep_leaves_a_long_series_to_the_worker_on_it(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    with session_scope(engine) as session:
        series = Series(series_uid="2.25.4242", status=Status.PROCESSING, stage=Stage.DEID,
                        trace_id="0" * 32, updated_at=utcnow() - timedelta(hours=2))
        session.add(series)
        session.flush()
        series_id = series.id
    assert series_id is not None
    bus = InProcessBus(RetryPolicy(max_attempts=1))
    queues = {Stage.DEID: "deid", Stage.SEND: "send"}

    def requeued() -> int:
        return asyncio.run(outbox.requeue_stuck(engine, bus, queues, timedelta(minutes=15)))

    with series_lock.exclusive(engine, series_id):
        assert requeued() == 0
    assert requeued() == 1
    engine.dispose()


def _lock_holders(engine: Engine, series_id: int) -> list[int]:
    with engine.connect() as connection:
        return [int(pid) for pid in connection.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = :namespace AND objid = :series_id"),
            {"namespace": series_lock.NAMESPACE, "series_id": series_id}).scalars()]


def test_a_holder_that_lost_its_lock_commits_nothing(postgres_url: str) -> None:
    # The lock's session ends under the holder (as on a failover, where the new primary
    # knows no lock): another worker takes the series, and the first one's next unit of
    # work fails instead of writing over the second's.
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    with session_scope(engine) as session:
        series = Series(series_uid="2.25.4343", status=Status.PROCESSING, stage=Stage.DEID,
                        trace_id="0" * 32)
        session.add(series)
        session.flush()
        series_id = series.id
    assert series_id is not None
    with pytest.raises(OperationalError):  # noqa: SIM117 - the lock spans the whole test
        with series_lock.exclusive(engine, series_id):
            with engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"),
                              {"pid": _lock_holders(engine, series_id)[0]})
            with series_lock.exclusive(engine, series_id):  # the second worker gets it
                pass
            with session_scope(engine) as session:
                session.get(Series, series_id).status = Status.FAILED  # type: ignore[union-attr]
    with Session(engine) as session:
        assert session.get(Series, series_id).status == Status.PROCESSING  # type: ignore[union-attr]
    engine.dispose()
