"""Pull sources on real services: a clinical Orthanc as the PACS the relay collects a
worklist from (C-FIND, C-MOVE to the relay's SCP) and follows (changes feed), a second
Orthanc as the research destination, the relay as separate processes."""

from __future__ import annotations

import csv
import io
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.e2e.pipeline import (
    OPERATOR_ENTRY,
    OPERATOR_TOKEN,
    TOKEN_ENTRY,
    api_get,
    assert_no_originals_in_orthanc,
    wait_for_series,
)
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance
from tests.support.services import (
    Orthanc,
    RelayProcess,
    answers,
    free_port,
    print_logs,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.orthanc]
RELAY_AE = "RELAY"


@dataclass
class PullStack:
    tmp: Path
    destination: Orthanc
    env: dict[str, str]
    api: str
    procs: dict[str, RelayProcess] = field(default_factory=dict)

    def start(self, service: str) -> None:
        env = dict(self.env, RELAY_METRICS_PORT=str(free_port()))
        self.procs[service] = RelayProcess(service, env, self.tmp / f"{service}.log").start()

    def stop(self, service: str) -> None:
        self.procs.pop(service).stop(signal.SIGTERM)




@pytest.fixture
def scp_port() -> int:
    return free_port()


@pytest.fixture
def source(tmp_path: Path, scp_port: int) -> Iterator[Orthanc]:
    """The clinical side: it knows the relay as a modality, the C-MOVE destination."""
    server = Orthanc(tmp_path / "source", aet="CLINICAL")
    server.modalities = {"relay": [RELAY_AE, "127.0.0.1", scp_port]}
    server.start()
    yield server
    server.stop()


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "destination", aet="RESEARCH").start()
    yield server
    server.stop()


def _stack(tmp: Path, data_dir: Path, postgres_url: str, queue_prefix: str, scp_port: int,
           destination: Orthanc, **settings: object) -> PullStack:
    api_port = free_port()
    env = relay_env(
        {}, data_dir=data_dir, database_url=postgres_url, queue_prefix=queue_prefix,
        amqp_url="amqp://guest:guest@127.0.0.1:5672/", api_port=api_port,
        api_tokens=f"{TOKEN_ENTRY},{OPERATOR_ENTRY}", deid_secret="pull-test-secret-0123456789",
        orthanc_url=destination.url, retry_base_delay=0.5, watch_interval=0.2,
        scp_port=scp_port, scp_ae_title=RELAY_AE,
        stable_age=1, **settings)
    run_relay("db", "upgrade", env=env)
    stack = PullStack(tmp, destination, env, f"http://127.0.0.1:{api_port}")
    for service in ("ingest", "deid", "sender", "api"):
        stack.start(service)
    wait_until(lambda: answers(f"{stack.api}/readyz"), 60, "the api")
    return stack


@pytest.fixture
def collecting(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str,
               scp_port: int, source: Orthanc, destination: Orthanc) -> Iterator[PullStack]:
    stack = _stack(tmp_path, data_dir, postgres_url, queue_prefix, scp_port, destination,
                   pacs_host="127.0.0.1", pacs_port=source.dicom_port, pacs_ae_title=source.aet,
                   collect_rate=20, collect_max_concurrent=2, collect_poll_interval=0.5)
    yield stack
    for name in list(stack.procs):
        stack.stop(name)
    print_logs(tmp_path.glob("*.log"))


@pytest.fixture
def following(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str,
              scp_port: int, source: Orthanc, destination: Orthanc) -> Iterator[PullStack]:
    stack = _stack(tmp_path, data_dir, postgres_url, queue_prefix, scp_port, destination,
                   follow_orthanc_urls=source.url, follow_poll_interval=0.5,
                   follow_from_start="true", follow_delete_after_done="true")
    yield stack
    for name in list(stack.procs):
        stack.stop(name)
    print_logs(tmp_path.glob("*.log"))


def store(orthanc: Orthanc, spec: SeriesSpec) -> None:
    for index in range(spec.instances):
        buffer = io.BytesIO()
        make_instance(spec, index).save_as(buffer, enforce_file_format=True)
        response = httpx.post(f"{orthanc.url}/instances", content=buffer.getvalue(), timeout=30)
        response.raise_for_status()


def _patient(n: int, accession: str) -> Patient:
    return Patient(f"MRN-{n:04d}", f"Testperson^Number{n}", accession=accession)


def test_a_worklist_is_collected_done_or_reported_with_its_reason(
        collecting: PullStack, source: Orthanc) -> None:
    one = SeriesSpec(_patient(1, "ACC-1001"), instances=4)
    two_a = SeriesSpec(_patient(2, "ACC-1002"), instances=3)
    two_b = SeriesSpec(two_a.patient, study_uid=two_a.study_uid, instances=2, modality="CT")
    twins = [SeriesSpec(_patient(3, "ACC-TWIN"), instances=2),
             SeriesSpec(_patient(4, "ACC-TWIN"), instances=2)]
    specs = [one, two_a, two_b, *twins]
    for spec in specs:
        store(source, spec)
    worklist = "accession_number\nACC-1001\nACC-1002\nACC-MISSING\nACC-TWIN\n"
    first = _collect(collecting.api, worklist)

    rows = {row["row"]: row for row in first["rows"]}
    assert [rows[n]["state"] for n in (1, 2, 3, 4)] == ["DONE", "DONE", "NOT_FOUND",
                                                          "AMBIGUOUS"]
    assert rows[2]["series"] == 2 and rows[2]["instances"] == 5
    assert "2 studies carry this accession number" in rows[4]["reason"]
    assert len(collecting.destination.instances()) == 4 + 5
    assert_no_originals_in_orthanc(collecting.destination, specs)
    series = wait_for_series(collecting.api, 3, {"DONE"})
    assert sorted(s["image_count"] for s in series) == [2, 3, 4]

    report = _report(collecting.api, first["id"])
    assert [r["state"] for r in report] == ["DONE", "DONE", "NOT_FOUND", "AMBIGUOUS"]
    assert report[2]["reason"] == "the PACS holds no study for this row"

    again = _collect(collecting.api, worklist)
    rows = {row["row"]: row for row in again["rows"]}
    assert rows[1]["reason"].startswith("collected already")
    assert rows[2]["series_ids"] and rows[3]["state"] == "NOT_FOUND"
    assert len(collecting.destination.instances()) == 9


def _collect(api: str, worklist: str) -> dict:
    response = httpx.post(f"{api}/api/v1/collections", json={"name": "cohort", "csv": worklist},
                          headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10)
    assert response.status_code == 202, response.text
    collection_id = response.json()["id"]
    found: dict = {}

    def settled() -> bool:
        nonlocal found
        found = api_get(api, f"/api/v1/collections/{collection_id}")
        return bool(found["settled"])

    wait_until(settled, 240, "the worklist to settle", interval=0.5)
    return found


def _report(api: str, collection_id: int) -> list[dict[str, str]]:
    response = httpx.get(f"{api}/api/v1/collections/{collection_id}/report.csv",
                         headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10)
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_followed_series_arrive_once_even_across_a_restart(following: PullStack,
                                                          source: Orthanc) -> None:
    patient = _patient(7, "ACC-7007")
    first = SeriesSpec(patient, instances=3)
    second = SeriesSpec(patient, study_uid=first.study_uid, instances=2)
    store(source, first)
    store(source, second)
    wait_for_series(following.api, 2, {"DONE"})

    following.stop("ingest")
    following.start("ingest")
    later = SeriesSpec(_patient(8, "ACC-8008"), instances=4, study_uid=generate_uid())
    store(source, later)
    series = wait_for_series(following.api, 3, {"DONE"})

    assert sorted(s["image_count"] for s in series) == [2, 3, 4]
    assert len(following.destination.instances()) == 9
    assert_no_originals_in_orthanc(following.destination, [first, second, later])
    for item in series:  # each series was delivered once: no second "received" event
        events = api_get(following.api, f"/api/v1/series/{item['id']}")["events"]
        assert [e["kind"] for e in events].count("received") == 1
    wait_until(lambda: not source.instances(), 60,
               "the source to let go of the series that are DONE")
