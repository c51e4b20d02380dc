"""The review gate through the whole pipeline: as separate processes on RabbitMQ,
PostgreSQL and Orthanc (a series waits in REVIEW, two reviewers on two api replicas
approve it at once and it reaches Orthanc once; another is rejected and never leaves),
and in `relay up` on the embedded defaults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay_api.auth import hash_token
from tests.e2e.pipeline import TOKEN, TOKEN_ENTRY, api_get, wait_for_series
from tests.support.dicom_factory import Patient, SeriesSpec, deliver, write_series
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    print_logs,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e]
REVIEWERS = {"ann": "e2e-reviewer-ann-token", "ben": "e2e-reviewer-ben-token"}
ENTRIES = ",".join([TOKEN_ENTRY, *(f"{name}:reviewer:{hash_token(token)}"
                                   for name, token in REVIEWERS.items())])


@pytest.fixture
def pipeline(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str,
             orthanc) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    api_port = free_port()
    env = relay_env({}, data_dir=data_dir, database_url=postgres_url,
                    amqp_url="amqp://guest:guest@127.0.0.1:5672/", queue_prefix=queue_prefix,
                    orthanc_url=orthanc.url, api_port=api_port, retry_base_delay=0.5,
                    api_tokens=ENTRIES, review_mode="all",
                    deid_secret="end-to-end-test-secret-0123456789", watch_interval=0.2)
    run_relay("db", "upgrade", env=env)
    procs = [RelayProcess(service, dict(env, RELAY_METRICS_PORT=str(free_port())),
                          tmp_path / f"{service}.log").start()
             for service in ("ingest", "deid", "sender", "api")]
    # A second api replica: two reviewers on two replicas decide at the same moment.
    second_port = free_port()
    procs.append(RelayProcess("api", dict(env, RELAY_API_PORT=str(second_port),
                                          RELAY_METRICS_PORT=str(free_port())),
                              tmp_path / "api-2.log").start())
    api_url, second_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{second_port}"
    for url in (api_url, second_url):
        wait_until(lambda url=url: answers(f"{url}/readyz"), 60, "the api")  # type: ignore[misc]
    yield {"api": api_url, "api2": second_url, "data_dir": data_dir, "orthanc": orthanc,
           "tmp": tmp_path}
    for proc in procs:
        proc.stop()
    print_logs(tmp_path.glob("*.log"))  # shown by pytest only when the test failed


def _post(api_url: str, path: str, token: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{api_url}{path}", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})


def _kinds(api_url: str, series_id: int) -> list[str]:
    return [e["kind"] for e in api_get(api_url, f"/api/v1/series/{series_id}")["events"]]


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.orthanc
def test_approved_once_reaches_orthanc_once_and_rejected_never_leaves(pipeline: dict) -> None:
    api, orthanc = pipeline["api"], pipeline["orthanc"]
    specs = [SeriesSpec(Patient("MRN-5005", "Meitner^Lise"), instances=4),
             SeriesSpec(Patient("MRN-6006", "Noether^Emmy"), instances=3, modality="MR")]
    for n, spec in enumerate(specs):
        write_series(spec, pipeline["tmp"] / f"series-{n}")
        deliver(pipeline["tmp"] / f"series-{n}", pipeline["data_dir"] / "incoming")
    waiting = wait_for_series(api, 2, {"REVIEW"}, timeout=180)
    by_count = {s["image_count"]: s["id"] for s in waiting}
    to_approve, to_reject = by_count[4], by_count[3]
    time.sleep(2)  # nothing leaves while they wait
    assert orthanc.instances() == []

    start = threading.Barrier(len(REVIEWERS))
    codes: list[int] = []

    def approve(url: str, token: str) -> None:
        start.wait()
        codes.append(_post(url, f"/api/v1/review/{to_approve}/approve", token).status_code)

    threads = [threading.Thread(target=approve, args=pair)
               for pair in zip((api, pipeline["api2"]), REVIEWERS.values(), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 409]
    rejected = _post(api, f"/api/v1/review/{to_reject}/reject", REVIEWERS["ben"],
                     {"reason": "the MR localiser shows a label"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "QUARANTINED"
    assert _post(api, f"/api/v1/series/{to_reject}/retry", TOKEN).status_code == 403

    wait_until(lambda: api_get(api, f"/api/v1/series/{to_approve}")["status"] == "DONE", 120,
               "the approved series to be DONE")
    time.sleep(3)  # a second send, had one been queued, would have happened by now
    assert len(orthanc.instances()) == 4
    kinds = _kinds(api, to_approve)
    assert kinds.count("approved") == 1 and kinds.count("sent") == 1 \
        and kinds.count("done") == 1
    series = {s["id"]: s for s in wait_for_series(api, 2, {"DONE", "QUARANTINED"})}
    assert series[to_reject]["status"] == "QUARANTINED"
    assert series[to_reject]["error"] == "rejected in review: the MR localiser shows a label"
    assert "sent" not in _kinds(api, to_reject)
    modalities = {str(orthanc.instance_tags(i).get("Modality")) for i in orthanc.instances()}
    assert modalities == {"CT"}  # nothing of the rejected MR series


@pytest.fixture
def relay_up(tmp_path: Path) -> Iterator[dict]:
    """`relay up` on the embedded defaults: SQLite, the in-process bus, the outbox folder."""
    api_port = free_port()
    env = relay_env({}, api_port=api_port, api_tokens=ENTRIES, review_mode="all",
                    watch_interval=0.2)
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    proc = RelayProcess("up", env, tmp_path / "up.log", cwd=workdir).start()
    api_url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api_url}/readyz", proc), 60, "relay up")
    yield {"api": api_url, "var": workdir / "var", "tmp": tmp_path}
    assert proc.stop() == 0, (tmp_path / "up.log").read_text()[-3000:]


def test_on_the_embedded_runtime_only_the_approved_series_reaches_the_outbox(
        relay_up: dict) -> None:
    api, outbox = relay_up["api"], relay_up["var"] / "outbox"
    for n, patient in enumerate((Patient("MRN-7007", "Franklin^Rosalind"),
                                 Patient("MRN-8008", "Goeppert^Maria"))):
        write_series(SeriesSpec(patient, instances=2 + n), relay_up["tmp"] / f"s{n}")
        deliver(relay_up["tmp"] / f"s{n}", relay_up["var"] / "incoming")
    waiting = {s["image_count"]: s["id"] for s in wait_for_series(api, 2, {"REVIEW"}, 120)}
    assert not outbox.exists() or not list(outbox.rglob("*.dcm"))
    assert _post(api, f"/api/v1/review/{waiting[2]}/approve", REVIEWERS["ann"]).status_code \
        == 200
    assert _post(api, f"/api/v1/review/{waiting[3]}/reject", REVIEWERS["ben"],
                 {"reason": "wrong patient in the series"}).status_code == 200
    series = {s["id"]: s["status"] for s in wait_for_series(api, 2, {"DONE", "QUARANTINED"})}
    assert series == {waiting[2]: "DONE", waiting[3]: "QUARANTINED"}
    assert len(list(outbox.rglob("*.dcm"))) == 2
