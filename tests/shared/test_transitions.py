"""Status changes are seen wherever they are committed: the latency to DONE and the
finished counts are observed once per real change, and never for a rolled-back one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session

from relay_shared import transitions
from relay_shared.db import make_engine, session_scope, upgrade
from relay_shared.models import Series, Status, utcnow


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    transitions.install()
    return make_engine(url)


def done_latencies() -> tuple[float, float]:
    labels = {"project": "default"}
    return (REGISTRY.get_sample_value("relay_series_done_seconds_count", labels) or 0.0,
            REGISTRY.get_sample_value("relay_series_done_seconds_sum", labels) or 0.0)


def finished(status: str) -> float:
    return REGISTRY.get_sample_value("relay_series_finished_total", {"status": status}) or 0.0


def new_series(engine: Engine, received_ago: timedelta) -> int:
    with session_scope(engine) as session:
        series = Series(trace_id="t", created_at=utcnow() - received_ago)
        session.add(series)
        session.flush()
        assert series.id is not None
        return series.id


def set_status(engine: Engine, series_id: int, status: Status) -> None:
    with session_scope(engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series.status = status


def test_done_observes_the_time_since_receipt_under_the_default_project(engine):
    series_id = new_series(engine, timedelta(minutes=10))
    count, total = done_latencies()
    done = finished("DONE")
    set_status(engine, series_id, Status.DONEPROCESSING)
    assert done_latencies() == (count, total)
    set_status(engine, series_id, Status.DONE)
    new_count, new_total = done_latencies()
    assert new_count == count + 1
    assert 600 <= new_total - total < 660
    assert finished("DONE") == done + 1


def test_setting_the_same_status_again_counts_nothing(engine):
    series_id = new_series(engine, timedelta(seconds=1))
    set_status(engine, series_id, Status.FAILED)
    failed = finished("FAILED")
    set_status(engine, series_id, Status.FAILED)  # a redelivered message's second try
    assert finished("FAILED") == failed


def test_a_rolled_back_change_counts_nothing(engine):
    series_id = new_series(engine, timedelta(seconds=1))
    count, _ = done_latencies()
    with Session(engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series.status = Status.DONE
        session.flush()
        session.rollback()
        session.commit()  # the same session goes on and commits nothing of it
    assert done_latencies()[0] == count
