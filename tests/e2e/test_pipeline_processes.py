"""The whole pipeline as separate processes on RabbitMQ, PostgreSQL and Orthanc."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.pipeline import (
    OPERATOR_ENTRY,
    TOKEN_ENTRY,
    api_get,
    assert_no_originals_in_orthanc,
    corpus,
    wait_for_series,
)
from tests.support.dicom_factory import deliver
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    print_logs,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.orthanc]


@pytest.fixture
def pipeline(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str,
             orthanc) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    api_port = free_port()
    env = relay_env({}, data_dir=data_dir, database_url=postgres_url,
                    amqp_url="amqp://guest:guest@127.0.0.1:5672/", queue_prefix=queue_prefix,
                    orthanc_url=orthanc.url, api_port=api_port, retry_base_delay=0.5,
                    api_tokens=f"{TOKEN_ENTRY},{OPERATOR_ENTRY}",
                    deid_secret="end-to-end-test-secret-0123456789", watch_interval=0.2)
    run_relay("db", "upgrade", env=env)
    procs = []
    for service in ("ingest", "deid", "sender", "api"):
        proc_env = dict(env, RELAY_METRICS_PORT=str(free_port()))
        procs.append(RelayProcess(service, proc_env, tmp_path / f"{service}.log").start())
    api_url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api_url}/readyz"), 60, "the api")
    yield {"env": env, "api": api_url, "data_dir": data_dir, "procs": procs,
           "orthanc": orthanc, "tmp": tmp_path}
    for proc in procs:
        proc.stop()
    print_logs(tmp_path.glob("*.log"))  # shown by pytest only when the test failed




def test_three_series_reach_done_and_orthanc_holds_them_deidentified(pipeline: dict) -> None:
    specs, folders = corpus(pipeline["tmp"] / "corpus", instances=20)
    for folder in folders:
        deliver(folder, pipeline["data_dir"] / "incoming")
    series = wait_for_series(pipeline["api"], 3, {"DONE"})
    assert all(s["image_count"] == 20 for s in series)
    orthanc = pipeline["orthanc"]
    assert len(orthanc.instances()) == 60
    assert_no_originals_in_orthanc(orthanc, specs)
    assert not any((pipeline["data_dir"] / "work").glob("series-*")), "working files remain"


def test_same_folder_twice_makes_no_duplicates(pipeline: dict) -> None:
    _specs, folders = corpus(pipeline["tmp"] / "corpus", instances=20)
    deliver(folders[0], pipeline["data_dir"] / "incoming")
    wait_for_series(pipeline["api"], 1, {"DONE"})
    deliver(folders[0], pipeline["data_dir"] / "incoming")
    wait_until(lambda: not any((pipeline["data_dir"] / "incoming").iterdir()), 60,
               "the second delivery to be taken")
    series = wait_for_series(pipeline["api"], 1, {"DONE"})
    assert len(series) == 1 and series[0]["image_count"] == 20
    detail = api_get(pipeline["api"], f"/api/v1/series/{series[0]['id']}")
    assert any("20 already held" in (e["detail"] or "") for e in detail["events"])
    assert len(pipeline["orthanc"].instances()) == 20
    assert len(api_get(pipeline["api"], "/api/v1/studies")["items"]) == 1


def test_bad_files_are_failed_with_reasons_and_quarantined(pipeline: dict) -> None:
    _specs, folders = corpus(pipeline["tmp"] / "corpus", instances=20)
    folder = folders[0]
    (folder / "notes.txt").write_text("this is not DICOM")
    victim = folder / "IM00003.dcm"
    victim.write_bytes(victim.read_bytes()[:-700])  # cut inside the pixel data
    deliver(folder, pipeline["data_dir"] / "incoming")
    series = wait_for_series(pipeline["api"], 1, {"DONE"})
    detail = api_get(pipeline["api"], f"/api/v1/series/{series[0]['id']}")
    assert detail["images_by_status"] == {"DONE": 19, "FAILED": 2}
    reasons = sorted(f["reason"] for f in detail["failures"])
    assert any("not a DICOM" in r for r in reasons), reasons
    assert any("ends early" in r for r in reasons), reasons
    quarantined = sorted(p.name for p in (pipeline["data_dir"] / "quarantine").rglob("*")
                         if p.is_file())
    assert quarantined == ["IM00003.dcm", "notes.txt"]
    assert len(pipeline["orthanc"].instances()) == 19


def test_a_database_dump_reveals_no_patient(pipeline: dict, postgres_url: str) -> None:
    import subprocess

    specs, folders = corpus(pipeline["tmp"] / "corpus", instances=5)
    for folder in folders:
        deliver(folder, pipeline["data_dir"] / "incoming")
    wait_for_series(pipeline["api"], 3, {"DONE"})
    database = postgres_url.rsplit("/", 1)[1]
    dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", database],
                          capture_output=True, text=True, check=True).stdout
    assert "seriesidentifiers" in dump  # the dump is real and holds the mapping table
    for spec in specs:
        for value in (*spec.patient.identifying_values(), spec.patient.birth_date,
                      *spec.original_uids()):
            assert value not in dump, "an identifying value is in the database in clear"
