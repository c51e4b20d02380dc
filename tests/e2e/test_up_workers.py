"""`relay up --workers N` on the embedded defaults (SQLite, the outbox folder): N deid
processes share the work, each takes series, and no series is de-identified twice."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.pipeline import TOKEN_ENTRY, wait_for_series
from tests.support.dicom_factory import Patient, SeriesSpec, deliver, write_series
from tests.support.services import RelayProcess, answers, free_port, relay_env, wait_until

pytestmark = [pytest.mark.e2e]

SERIES = 8
INSTANCES = 12


@pytest.fixture
def relay_up_two_workers(tmp_path: Path) -> Iterator[dict]:
    api_port = free_port()
    env = relay_env({}, api_port=api_port, api_tokens=TOKEN_ENTRY, watch_interval=0.2)
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    log = tmp_path / "up.log"
    proc = RelayProcess("up", env, log, cwd=workdir, args=["--workers", "2"]).start()
    api_url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api_url}/readyz", proc), 60, "relay up")
    # Both workers take messages before any series arrives, so either may get the first.
    wait_until(lambda: log.read_text().count('"consuming"') >= 3, 60, "two deid workers")
    yield {"api": api_url, "var": workdir / "var", "tmp": tmp_path, "proc": proc, "log": log}
    assert proc.stop() == 0, log.read_text()[-3000:]


def test_two_worker_processes_share_the_series_each_done_once(
        relay_up_two_workers: dict) -> None:
    up = relay_up_two_workers
    patients = [Patient(f"MRN-9{n:03d}", f"Worker^Test{n}") for n in range(SERIES)]
    for n, patient in enumerate(patients):
        folder = up["tmp"] / f"s{n}"
        write_series(SeriesSpec(patient, instances=INSTANCES), folder)
        deliver(folder, up["var"] / "incoming")
    series = wait_for_series(up["api"], SERIES, {"DONE"})
    assert sorted(s["image_count"] for s in series) == [INSTANCES] * SERIES
    assert len(list((up["var"] / "outbox").rglob("*.dcm"))) == SERIES * INSTANCES

    with sqlite3.connect(up["var"] / "relay.db") as db:
        events = db.execute("SELECT series_id, kind, process FROM event "
                            "WHERE service = 'deid'").fetchall()
    done = [(series_id, process) for series_id, kind, process in events
            if kind == "deidentified"]
    started = Counter(series_id for series_id, kind, _ in events if kind == "started")
    assert sorted(Counter(series_id for series_id, _ in done).values()) == [1] * SERIES
    assert sorted(started.values()) == [1] * SERIES  # nobody began a series twice
    parent = f":{up['proc'].process.pid}"
    workers = {process for _, process in done}
    assert len(workers) == 2, f"the series were de-identified by {workers}"
    assert not any(process.endswith(parent) for process in workers)
