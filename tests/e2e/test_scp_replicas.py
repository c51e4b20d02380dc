"""The SCP as two replicas behind one address: a series whose instances arrive half at
each ingest process (sharing the database, the broker and the data volume, as the
Kubernetes deployment runs them) closes once: it is recorded once, de-identified once
and delivered once."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import (
    AMQP_URL,
    RelayProcess,
    free_port,
    print_logs,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.dcmtk]

SCP_AE = "RELAY"
STABLE_AGE = 3
INSTANCES = 20


@pytest.fixture
def two_scps(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str
             ) -> Iterator[dict]:
    ports = [free_port(), free_port()]
    env = relay_env({}, data_dir=data_dir, database_url=postgres_url, amqp_url=AMQP_URL,
                    queue_prefix=queue_prefix, deid_secret="replica-test-secret-0123456789",
                    retry_base_delay=0.5, watch_interval=0.2, scp_ae_title=SCP_AE,
                    stable_age=STABLE_AGE, destinations="outbox")
    run_relay("db", "upgrade", env=env)
    procs = [RelayProcess("ingest", dict(env, RELAY_SCP_PORT=str(port),
                                         RELAY_METRICS_PORT=str(free_port())),
                          tmp_path / f"ingest-{n}.log").start()
             for n, port in enumerate(ports)]
    procs += [RelayProcess(service, dict(env, RELAY_METRICS_PORT=str(free_port())),
                           tmp_path / f"{service}.log").start() for service in ("deid", "sender")]
    for port in ports:
        wait_until(lambda port=port: echo(port).returncode == 0, 60, "an SCP to answer C-ECHO")
    yield {"ports": ports, "db": postgres_url.replace("+psycopg", ""), "data": data_dir}
    for proc in procs:
        proc.stop()
    print_logs(tmp_path.glob("*.log"))


def echo(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["echoscu", "-aec", SCP_AE, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=30)


def storescu(port: int, files: list[Path]) -> None:
    result = subprocess.run(["storescu", "-aec", SCP_AE, "127.0.0.1", str(port),
                             *map(str, files)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_series_split_between_two_scps_closes_once(two_scps: dict, tmp_path: Path) -> None:
    files = write_series(SeriesSpec(Patient("MRN-6006", "Hopper^Grace"), instances=INSTANCES),
                         tmp_path / "series")
    first, second = two_scps["ports"]
    storescu(first, files[0::2])
    # The second half comes well within the stable age of the first: one series still.
    time.sleep(STABLE_AGE / 2)
    storescu(second, files[1::2])

    with psycopg.connect(two_scps["db"], autocommit=True) as db:
        def statuses() -> list[str]:
            return [row[0] for row in db.execute("SELECT status FROM series")]

        wait_until(lambda: statuses() == ["DONE"], 120, "the series to be DONE")
        time.sleep(STABLE_AGE + 3)  # a second closing, or a second run, would show by now
        assert statuses() == ["DONE"]  # recorded once
        images = db.execute("SELECT status, count(*) FROM image GROUP BY status").fetchall()
        kinds = Counter(kind for (kind,) in db.execute("SELECT kind FROM event"))
        # One row per image and destination; its attempts count the sends.
        deliveries = dict(db.execute(
            "SELECT image_id, attempts FROM delivery WHERE state = 'CONFIRMED'").fetchall())
    assert images == [("DONE", INSTANCES)]
    assert kinds["started"] == 1 and kinds["deidentified"] == 1, kinds  # de-identified once
    assert kinds["done"] == 1, kinds  # delivered once
    assert len(deliveries) == INSTANCES and set(deliveries.values()) == {1}
    assert len(list((two_scps["data"] / "outbox").rglob("*.dcm"))) == INSTANCES
