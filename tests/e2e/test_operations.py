"""Operating a run of `relay up`: /metrics agrees with the database, the logs hold no
identifying value, and every line of a series' work carries its trace id."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.e2e.pipeline import TOKEN_ENTRY, api_get, corpus, wait_for_series
from tests.support.dicom_factory import SeriesSpec, deliver
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e]
INSTANCES = 10


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Three series (one with a text file and a truncated instance) taken to DONE."""
    tmp = tmp_path_factory.mktemp("operations")
    api_port = free_port()
    env = relay_env({}, api_port=api_port, api_tokens=TOKEN_ENTRY, watch_interval=0.2,
                    log_level="DEBUG")
    workdir = tmp / "checkout"
    workdir.mkdir()
    proc = RelayProcess("up", env, tmp / "up.log", cwd=workdir).start()
    api = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api}/readyz", proc), 60, "relay up")
    specs, folders = corpus(tmp / "corpus", instances=INSTANCES)
    (folders[0] / "notes.txt").write_text("this is not DICOM")
    victim = folders[0] / "IM00003.dcm"
    victim.write_bytes(victim.read_bytes()[:-300])
    for folder in folders:
        deliver(folder, workdir / "var" / "incoming")
    wait_for_series(api, 3, {"DONE"})
    metrics = httpx.get(f"{api}/metrics", timeout=10).text
    yield {"api": api, "metrics": metrics, "db": workdir / "var" / "relay.db",
           "log": tmp / "up.log", "specs": specs, "proc": proc}
    assert proc.stop() == 0




def _samples(metrics: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def _db_counts(db: Path) -> tuple[Counter[str], Counter[str]]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        images = Counter(dict(connection.execute(
            text("SELECT status, count(*) FROM image GROUP BY status")).all()))
        series = Counter(dict(connection.execute(
            text("SELECT status, count(*) FROM series GROUP BY status")).all()))
    engine.dispose()
    return images, series


def test_metrics_match_the_database(finished_run: dict) -> None:
    samples = _samples(finished_run["metrics"])
    images, series = _db_counts(finished_run["db"])
    assert images == {"DONE": 3 * INSTANCES - 1, "FAILED": 2}
    assert _value(samples, "relay_instances_received_total") == images.total()
    assert _value(samples, "relay_instances_deidentified_total") == images["DONE"]
    assert _value(samples, "relay_instances_sent_total", destination="outbox") == images["DONE"]
    assert _value(samples, "relay_instances_failed_total") == images["FAILED"]
    assert _value(samples, "relay_instances_failed_total", stage="ingest",
                  reason="file_ends_early") == 1
    assert _value(samples, "relay_series_finished_total", status="DONE") == series["DONE"] == 3
    for status in ("DONE", "FAILED", "NEW"):
        assert _value(samples, "relay_images", status=status) == images[status]
        assert _value(samples, "relay_series", status=status) == series[status]
    for stage in ("ingest", "deid", "send"):
        assert _value(samples, "relay_stage_seconds_count", stage=stage) == 3
    for stage in ("deid", "send"):
        assert _value(samples, "relay_series_in_flight", stage=stage) == 0
    assert _value(samples, "relay_queue_depth", queue="relay.deid") == 0
    assert _value(samples, "relay_queue_depth", queue="relay.send") == 0


def test_statistics_agree(finished_run: dict) -> None:
    stats = api_get(finished_run["api"], "/api/v1/stats")
    assert stats["series_by_status"]["DONE"] == 3 and stats["in_flight"] == 0
    assert stats["last_hour"]["series_done"] == 3
    assert stats["last_hour"]["images_done"] == 3 * INSTANCES - 1
    assert stats["queues"] == {"relay.deid": 0, "relay.send": 0}


def _log_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_logs_hold_no_identifying_value(finished_run: dict) -> None:
    log_text = finished_run["log"].read_text()
    specs: list[SeriesSpec] = finished_run["specs"]
    for spec in specs:
        for value in (*spec.patient.identifying_values(), *spec.original_uids(),
                      spec.patient.birth_date):
            assert value not in log_text, f"an identifying value of {spec.patient.patient_id[:3]}"
    _log_lines(finished_run["log"])


def test_log_lines_of_a_series_carry_its_trace_id(finished_run: dict) -> None:
    engine = create_engine(f"sqlite:///{finished_run['db']}")
    with engine.connect() as connection:
        traces = dict(connection.execute(text("SELECT id, trace_id FROM series")).all())
    engine.dispose()
    worked = [e for e in _log_lines(finished_run["log"]) if "series_id" in e and (
        e["logger"].startswith(("relay_deid", "relay_sender")) or e["msg"] == "series received")]
    assert {e["series_id"] for e in worked} == set(traces)
    assert sum(e["msg"] == "series received" for e in worked) == 3
    for entry in worked:
        assert entry["trace_id"] == traces[entry["series_id"]], entry


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_separate_processes_each_serve_their_metrics(tmp_path: Path, data_dir: Path,
                                                     postgres_url: str, queue_prefix: str
                                                     ) -> None:
    """Each worker counts its own stage on its own port; the api reports the queues."""
    api_port, ports = free_port(), {s: free_port() for s in ("ingest", "deid", "sender")}
    env = relay_env({}, data_dir=data_dir, database_url=postgres_url, queue_prefix=queue_prefix,
                    amqp_url="amqp://guest:guest@127.0.0.1:5672/", api_port=api_port,
                    api_tokens=TOKEN_ENTRY, watch_interval=0.2, retry_base_delay=0.5)
    run_relay("db", "upgrade", env=env)
    procs = [RelayProcess(s, dict(env, RELAY_METRICS_PORT=str(ports.get(s, 0))),
                          tmp_path / f"{s}.log").start() for s in (*ports, "api")]
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: answers(f"{api}/readyz", procs[-1]), 60, "the api")
        _specs, folders = corpus(tmp_path / "corpus", instances=INSTANCES)
        for folder in folders[:2]:
            deliver(folder, data_dir / "incoming")
        wait_for_series(api, 2, {"DONE"})
        scraped = {s: _samples(httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=10).text)
                   for s, p in ports.items()}
        api_samples = _samples(httpx.get(f"{api}/metrics", timeout=10).text)
    finally:
        for proc in procs:
            proc.stop()
    total = 2 * INSTANCES
    assert _value(scraped["ingest"], "relay_instances_received_total") == total
    assert _value(scraped["deid"], "relay_instances_deidentified_total") == total
    assert _value(scraped["deid"], "relay_stage_seconds_count", stage="deid") == 2
    assert _value(scraped["sender"], "relay_instances_sent_total", destination="outbox") == total
    assert _value(scraped["sender"], "relay_series_finished_total", status="DONE") == 2
    assert _value(api_samples, "relay_images", status="DONE") == total
    for queue in ("deid", "send"):
        assert (("relay_queue_depth", (("queue", f"{queue_prefix}.{queue}"),))
                in api_samples), queue
    assert _value(api_samples, "relay_queue_depth", queue=f"{queue_prefix}.deid") == 0
