"""Projects through the whole pipeline, as separate processes on RabbitMQ, PostgreSQL and
two Orthancs: routing by calling AE, Modality and incoming subfolder; a drop, a hold and
its release; one pseudonym space per project; study dispatch; a reload in flight."""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.e2e.pipeline import OPERATOR_ENTRY, OPERATOR_TOKEN, TOKEN, TOKEN_ENTRY, api_get
from tests.support.dicom_factory import Patient, SeriesSpec, deliver, write_series
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

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.orthanc,
              pytest.mark.dcmtk]
SCP_AE = "RELAY"
SECRETS = {"LUNG_SECRET": "lung-trial-secret-0123456789",
           "REGISTRY_SECRET": "registry-secret-0123456789",
           "TRIAL_SECRET_1": "trial-secret-first-0123456789",
           "TRIAL_SECRET_2": "trial-secret-second-0123456789"}
ALICE = Patient("MRN-3003", "Franklin^Rosalind", accession="ACC-7333")


@dataclass
class Relay:
    root: Path
    projects_file: Path
    api: str = ""
    scp_port: int = field(default_factory=free_port)
    procs: dict[str, RelayProcess] = field(default_factory=dict)

    @property
    def incoming(self) -> Path:
        return self.root / "var" / "incoming"

    def series(self, **query: str) -> list[dict]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return list(api_get(self.api, f"/api/v1/series?limit=500&{params}")["items"])

    def wait(self, count: int, statuses: set[str], timeout: float = 180, **query: str
             ) -> list[dict]:
        found: list[dict] = []

        def ready() -> bool:
            nonlocal found
            found = self.series(**query)
            return len(found) >= count and all(s["status"] in statuses for s in found)

        wait_until(ready, timeout, f"{count} series {query} to reach {statuses}", interval=0.5)
        return found

    def post(self, path: str, token: str = OPERATOR_TOKEN) -> httpx.Response:
        return httpx.post(f"{self.api}{path}", headers={"Authorization": f"Bearer {token}"},
                          timeout=10)


@pytest.fixture
def orthanc_b(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc-b").start()
    yield server
    server.stop()


def start_relay(tmp_path: Path, postgres_url: str, queue_prefix: str, projects: str,
                **settings: object) -> Relay:
    projects_file = tmp_path / "projects.yaml"
    projects_file.write_text(textwrap.dedent(projects))
    relay = Relay(tmp_path, projects_file)
    api_port = free_port()
    env = relay_env(SECRETS, data_dir=tmp_path / "var", database_url=postgres_url,
                    amqp_url="amqp://guest:guest@127.0.0.1:5672/", queue_prefix=queue_prefix,
                    api_port=api_port, api_tokens=f"{TOKEN_ENTRY},{OPERATOR_ENTRY}",
                    deid_secret="relay-wide-secret-0123456789", watch_interval=0.2,
                    retry_base_delay=0.5, projects=projects_file, scp_port=relay.scp_port,
                    scp_ae_title=SCP_AE, stable_age=1, pixel_ocr="false", **settings)
    run_relay("db", "upgrade", env=env)
    for service in ("ingest", "deid", "sender", "api"):
        relay.procs[service] = RelayProcess(
            service, dict(env, RELAY_METRICS_PORT=str(free_port())),
            tmp_path / f"{service}.log").start()
    relay.api = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{relay.api}/readyz", relay.procs["api"]), 60, "the api")
    wait_until(lambda: subprocess.run(
        ["echoscu", "-aec", SCP_AE, "127.0.0.1", str(relay.scp_port)], capture_output=True,
        timeout=30).returncode == 0, 60, "the SCP to answer C-ECHO")
    return relay


def stop_relay(relay: Relay) -> None:
    for proc in relay.procs.values():
        proc.stop()
    print_logs(relay.root.glob("*.log"))  # shown by pytest only when the test failed


def series_folder(root: Path, name: str, study_uid: str | None = None, modality: str = "CT",
                  description: str | None = None, instances: int = 4) -> Path:
    spec = SeriesSpec(ALICE, instances=instances, modality=modality,
                      **({"study_uid": study_uid} if study_uid else {}))
    paths = write_series(spec, root / name)
    if description is not None:
        for path in paths:
            ds = dcmread(path)
            ds.SeriesDescription = description
            ds.save_as(path, enforce_file_format=True)
    return root / name


def storescu(port: int, calling_ae: str, folder: Path) -> None:
    result = subprocess.run(["storescu", "-aet", calling_ae, "-aec", SCP_AE, "+sd", "+r",
                             "127.0.0.1", str(port), str(folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def patient_ids(orthanc: Orthanc) -> set[str]:
    return {str(orthanc.instance_tags(i)["PatientID"]) for i in orthanc.instances()}


ROUTING = """\
version: 1
destinations:
  lung-orthanc: {{kind: orthanc, url: "{a}"}}
  registry-orthanc: {{kind: orthanc, url: "{b}"}}
  neuro-folder: {{kind: outbox, path: neuro-out}}
projects:
  - name: scouts
    match: {{header: {{SeriesDescription: {{regex: "(?i)scout|localizer"}}}}}}
    action: drop
  - name: neuro
    match: {{incoming_subdir: neuro}}
    destinations: [neuro-folder]
  - name: lung-trial
    match:
      source: scp
      calling_ae: CT_ROOM1
      header: {{Modality: {{in: [CT]}}}}
    deid: {{key_id: lung1, secret_env: LUNG_SECRET}}
    destinations: [lung-orthanc]
  - name: registry
    match: {{header: {{Modality: {{equals: MR}}}}}}
    deid: {{key_id: reg1, secret_env: REGISTRY_SECRET, options: [rtnLongFullDatesOpt]}}
    destinations: [registry-orthanc]
  - name: review
    match: {{header: {{Modality: {{equals: CT}}}}}}
    action: hold
    deid: {{key_id: lung1, secret_env: LUNG_SECRET}}
    destinations: [lung-orthanc]
"""


@pytest.fixture
def routing_relay(tmp_path: Path, postgres_url: str, queue_prefix: str, orthanc: Orthanc,
                  orthanc_b: Orthanc) -> Iterator[Relay]:
    relay = start_relay(tmp_path, postgres_url, queue_prefix,
                        ROUTING.format(a=orthanc.url, b=orthanc_b.url))
    yield relay
    stop_relay(relay)


def test_each_series_goes_where_its_project_says_with_that_projects_pseudonyms(
        routing_relay: Relay, tmp_path: Path, orthanc: Orthanc, orthanc_b: Orthanc) -> None:
    relay, corpus = routing_relay, tmp_path / "corpus"
    storescu(relay.scp_port, "CT_ROOM1", series_folder(corpus, "ct-1"))
    storescu(relay.scp_port, "CT_ROOM1", series_folder(corpus, "ct-2"))
    deliver(series_folder(corpus, "mr", modality="MR"), relay.incoming)
    deliver(series_folder(corpus, "scout", description="SCOUT 0.5"), relay.incoming)
    deliver(series_folder(corpus, "neuro-ct"), relay.incoming / "neuro")
    deliver(series_folder(corpus, "ct-by-hand"), relay.incoming)
    deliver(series_folder(corpus, "us", modality="US"), relay.incoming)

    relay.wait(2, {"DONE"}, project="lung-trial")
    relay.wait(1, {"DONE"}, project="registry")
    relay.wait(1, {"DONE"}, project="neuro")
    [scout] = relay.wait(1, {"IGNORED"}, project="scouts")
    [held] = relay.wait(1, {"HELD"}, project="review")
    unrouted = [s for s in relay.wait(7, {"DONE", "IGNORED", "HELD"}) if s["project"] is None]
    assert [s["status"] for s in unrouted] == ["IGNORED"]
    assert unrouted[0]["error"].startswith("no project takes this series: scouts: "
                                           "SeriesDescription regex")
    assert scout["error"] == ("project scouts: action drop "
                              "(SeriesDescription regex '(?i)scout|localizer')")

    # Two projects, two pseudonym spaces; one project, one pseudonym.
    assert len(orthanc.instances()) == 8 and len(orthanc_b.instances()) == 4
    lung_ids, registry_ids = patient_ids(orthanc), patient_ids(orthanc_b)
    assert len(lung_ids) == 1 and len(registry_ids) == 1 and lung_ids != registry_ids
    assert ALICE.patient_id not in lung_ids | registry_ids
    assert len(list((tmp_path / "neuro-out").rglob("*.dcm"))) == 4
    assert not (tmp_path / "var" / "work" / f"series-{scout['id']}").exists()

    assert relay.post(f"/api/v1/series/{held['id']}/release", token=TOKEN).status_code == 403
    released = relay.post(f"/api/v1/series/{held['id']}/release")
    assert released.status_code == 202 and released.json()["status"] == "NEW"
    relay.wait(1, {"DONE"}, project="review")
    assert len(orthanc.instances()) == 12
    assert patient_ids(orthanc) == lung_ids  # the same key as the trial: the same pseudonym
    assert relay.post(f"/api/v1/series/{held['id']}/release").status_code == 409


STUDY = """\
version: 1
destinations:
  whole-studies: {{kind: orthanc, url: "{a}"}}
projects:
  - name: trial
    destinations: [whole-studies]
    dispatch: study
"""


def test_study_dispatch_waits_for_the_studys_last_series(
        tmp_path: Path, postgres_url: str, queue_prefix: str, orthanc: Orthanc) -> None:
    relay = start_relay(tmp_path, postgres_url, queue_prefix, STUDY.format(a=orthanc.url),
                        study_stable_age=8)
    try:
        study, corpus = generate_uid(), tmp_path / "corpus"
        deliver(series_folder(corpus, "first", study_uid=study), relay.incoming)
        [first] = relay.wait(1, {"DONEPROCESSING"})

        def waiting() -> bool:
            events = api_get(relay.api, f"/api/v1/series/{first['id']}")["events"]
            return any(e["kind"] == "waiting" for e in events)

        wait_until(waiting, 60, "the first series to wait for its study")
        time.sleep(2)
        assert orthanc.instances() == []  # nothing sent while the study is not whole
        deliver(series_folder(corpus, "second", study_uid=study, modality="MR"),
                relay.incoming)
        done = relay.wait(2, {"DONE"}, timeout=120)
        assert len(orthanc.instances()) == 8
        second = next(s for s in done if s["id"] != first["id"])
        sent_at = [e["at"] for e in api_get(relay.api, f"/api/v1/series/{first['id']}")
                   ["events"] if e["kind"] == "sent"]
        assert sent_at and sent_at[0] > second["created_at"]
    finally:
        stop_relay(relay)


RELOAD = """\
version: 1
destinations:
  first: {{kind: orthanc, url: "{a}"}}
  second: {{kind: orthanc, url: "{b}"}}
projects:
  - name: trial
    action: {action}
    deid: {{key_id: {key_id}, secret_env: {secret}}}
    destinations: [{destination}]
"""


def test_a_reload_leaves_series_in_flight_with_the_version_that_routed_them(
        tmp_path: Path, postgres_url: str, queue_prefix: str, orthanc: Orthanc,
        orthanc_b: Orthanc) -> None:
    first = RELOAD.format(a=orthanc.url, b=orthanc_b.url, action="hold", key_id="t1",
                          secret="TRIAL_SECRET_1", destination="first")
    relay = start_relay(tmp_path, postgres_url, queue_prefix, first)
    try:
        corpus = tmp_path / "corpus"
        deliver(series_folder(corpus, "in-flight"), relay.incoming)
        [in_flight] = relay.wait(1, {"HELD"})
        version_one = api_get(relay.api, "/api/v1/projects")["sha256"]

        relay.projects_file.write_text(textwrap.dedent(RELOAD.format(
            a=orthanc.url, b=orthanc_b.url, action="send", key_id="t2",
            secret="TRIAL_SECRET_2", destination="second")))
        wait_until(lambda: api_get(relay.api, "/api/v1/projects")["sha256"] != version_one,
                   5, "the new version to be in force")
        time.sleep(3)  # every process rereads within its watch interval
        deliver(series_folder(corpus, "after"), relay.incoming)
        relay.wait(2, {"DONE", "HELD"})
        assert len(orthanc_b.instances()) == 4 and orthanc.instances() == []

        assert relay.post(f"/api/v1/series/{in_flight['id']}/release").status_code == 202
        relay.wait(2, {"DONE"})
        assert len(orthanc.instances()) == 4  # routed by the first version: its destination
        assert patient_ids(orthanc) != patient_ids(orthanc_b)  # and its key

        version_two = api_get(relay.api, "/api/v1/projects")["sha256"]
        relay.projects_file.write_text(relay.projects_file.read_text()
                                       .replace("action: send", "action: send\n    colour: red"))
        time.sleep(5)
        assert api_get(relay.api, "/api/v1/projects")["sha256"] == version_two
        deliver(series_folder(corpus, "after-a-bad-edit"), relay.incoming)
        relay.wait(3, {"DONE"})
        assert len(orthanc_b.instances()) == 8
        ingest_log = (tmp_path / "ingest.log").read_text()
        assert "projects file refused" in ingest_log and "unknown key" in ingest_log
    finally:
        stop_relay(relay)
