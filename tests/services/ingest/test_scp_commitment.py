"""Storage commitment as an SCP: a pynetdicom modality over loopback stores instances,
asks for commitment, and receives the N-EVENT-REPORT, on its own association or on one
the relay opens to it; the relay answers from what ingest recorded in the database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from relay_ingest import commitment, scp, staging
from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.db import make_engine, upgrade
from relay_shared.deid import Pseudonymizer
from relay_shared.models import Image, Status
from relay_shared.paths import WorkStore
from relay_shared.settings import Settings
from tests.services.ingest.conftest import scp_settings
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import (
    Orthanc,
    RelayProcess,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)

UID_OF = Pseudonymizer(b"commitment-test-secret").uid
PATIENT = Patient("MRN-4004", "Lovelace^Ada")
MODALITY = "MODALITY"


@dataclass
class Relay:
    settings: Settings
    engine: Engine
    store: WorkStore
    keeper: commitment.CommitmentKeeper


@dataclass
class Report:
    arrived: threading.Event = field(default_factory=threading.Event)
    event_type: int | None = None
    info: Dataset | None = None
    on_requesting_association: bool = False

    def take(self, event: evt.Event, requesting: bool) -> tuple[int, None]:
        self.event_type = int(event.event_type)
        self.info = event.event_information
        self.on_requesting_association = requesting
        self.arrived.set()
        return 0x0000, None

    def committed(self) -> set[str]:
        assert self.info is not None
        return {str(i.ReferencedSOPInstanceUID)
                for i in self.info.get("ReferencedSOPSequence", [])}

    def failed(self) -> dict[str, int]:
        assert self.info is not None
        return {str(i.ReferencedSOPInstanceUID): int(i.FailureReason)
                for i in self.info.get("FailedSOPSequence", [])}


def _ingest_arrivals(relay: Relay) -> None:
    """What ingest's watch loop does with each delivery the SCP hands over."""
    assert relay.settings.incoming_dir is not None
    for folder in sorted(relay.settings.incoming_dir.iterdir()):
        ingest_claimed(claim(folder, relay.store), relay.engine, relay.store, UID_OF,
                       "relay.deid")


@pytest.fixture
async def relay(tmp_path: Path, data_dir: Path) -> AsyncIterator[Callable[..., Relay]]:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    engine = make_engine(url)
    stops: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    async def start(ingest: bool = True, **overrides: object) -> Relay:
        settings = scp_settings(data_dir, **overrides)
        settings.ensure_dirs()
        assert settings.work_dir and settings.quarantine_dir and settings.staging_dir \
            and settings.incoming_dir
        store = WorkStore(settings.work_dir, settings.quarantine_dir)
        pipeline = commitment.Pipeline(settings.staging_dir, settings.incoming_dir,
                                       store.claimed_dir)
        reporter = commitment.Reporter(settings.scp_ae_title, settings.scp_ae_addresses,
                                       timeout=5)
        keeper = commitment.CommitmentKeeper(engine, UID_OF, pipeline, reporter, timeout=30)
        built = Relay(settings, engine, store, keeper)
        stop = asyncio.Event()
        stops.append((asyncio.create_task(scp.serve(settings, stop, commitments=keeper)), stop))
        if ingest:
            stops.append((asyncio.create_task(_ingest_loop(built, stop)), stop))
        await asyncio.sleep(0.3)
        return built

    yield start  # type: ignore[misc]
    for task, stop in stops:
        stop.set()
        await task


async def _ingest_loop(relay: Relay, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(_ingest_arrivals, relay)
        await asyncio.sleep(0.2)


def _request(references: list[tuple[str, str]]) -> Dataset:
    info = Dataset()
    info.TransactionUID = generate_uid()
    items = []
    for sop_class, sop_instance in references:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        items.append(item)
    info.ReferencedSOPSequence = items
    return info


def _modality_ae() -> AE:
    ae = AE(ae_title=MODALITY)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(StorageCommitmentPushModel)
    return ae


def _store_and_ask(port: int, paths: list[Path], request: Dataset, report: Report,
                   stay_for: float) -> int:
    """Store the files, ask for commitment, and keep the association open for the
    report up to ``stay_for`` seconds; return the N-ACTION status."""
    handlers = [(evt.EVT_N_EVENT_REPORT, lambda e: report.take(e, requesting=True))]
    assoc = _modality_ae().associate("127.0.0.1", port, ae_title="RELAYTEST",
                                     evt_handlers=handlers)
    assert assoc.is_established
    try:
        for path in paths:
            assert int(assoc.send_c_store(dcmread(path)).Status) == 0
        status, _ = assoc.send_n_action(request, commitment.REQUEST_COMMITMENT,
                                        StorageCommitmentPushModel,
                                        commitment.PUSH_MODEL_INSTANCE)
        report.arrived.wait(stay_for)
        return int(status.Status)
    finally:
        assoc.release()


async def test_the_report_names_the_stored_instances_and_refuses_an_unknown_one(
        relay: Callable[..., object], tmp_path: Path) -> None:
    """On the requesting association, kept open: the three stored are committed once
    ingest recorded them, the one never sent is No such object instance."""
    running = await relay()  # type: ignore[misc]
    spec = SeriesSpec(PATIENT, instances=3)
    paths = write_series(spec, tmp_path / "series")
    unknown = generate_uid()
    request = _request([(CTImageStorage, uid) for uid in spec.sop_uids]
                       + [(CTImageStorage, unknown)])
    report = Report()
    status = await asyncio.to_thread(_store_and_ask, running.settings.scp_port, paths,
                                     request, report, 20)
    assert status == 0x0000
    assert report.arrived.is_set(), "no N-EVENT-REPORT on the requesting association"
    assert report.on_requesting_association
    assert report.event_type == commitment.SOME_FAILED
    assert report.info is not None and report.info.TransactionUID == request.TransactionUID
    assert report.committed() == set(spec.sop_uids)
    assert report.failed() == {unknown: commitment.NO_SUCH_INSTANCE}
    with Session(running.engine) as session:  # recorded before it was reported
        assert {i.sop_uid for i in session.exec(select(Image))} \
            == {UID_OF(u) for u in spec.sop_uids}
    assert running.keeper.waiting == 0


def _listen_for_reports(port: int, report: Report) -> object:
    """The modality's own SCP, where a report comes once its association has closed."""
    ae = AE(ae_title=MODALITY)
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[
        (evt.EVT_N_EVENT_REPORT, lambda e: report.take(e, requesting=False))])


async def test_a_series_done_and_cleaned_up_is_still_committed_on_a_new_association(
        relay: Callable[..., object], tmp_path: Path) -> None:
    """The relay passes series along: a request that comes after the series went out
    and its files were removed is answered from the database, on an association the
    relay opens to the AE at the address it was given."""
    listen_port = free_port()
    running = await relay(scp_allowed_aes=f"{MODALITY}@127.0.0.1:{listen_port}")  # type: ignore[misc]
    spec = SeriesSpec(PATIENT, instances=2)
    paths = write_series(spec, tmp_path / "series")
    await asyncio.to_thread(_store, running.settings.scp_port, paths)
    await _until(lambda: _recorded(running.engine) == 2)
    _finish_and_clean_up(running)
    report = Report()
    server = _listen_for_reports(listen_port, report)
    try:
        request = _request([(CTImageStorage, uid) for uid in spec.sop_uids])
        status = await asyncio.to_thread(_ask_and_leave, running.settings.scp_port, request)
        assert status == 0x0000
        assert await asyncio.to_thread(report.arrived.wait, 20), "no report arrived"
    finally:
        server.shutdown()  # type: ignore[attr-defined]
    assert not report.on_requesting_association
    assert report.event_type == commitment.ALL_COMMITTED
    assert report.committed() == set(spec.sop_uids) and report.failed() == {}


def _store(port: int, paths: list[Path]) -> None:
    assoc = _modality_ae().associate("127.0.0.1", port, ae_title="RELAYTEST")
    assert assoc.is_established
    assert [int(assoc.send_c_store(dcmread(p)).Status) for p in paths] == [0] * len(paths)
    assoc.release()


def _ask_and_leave(port: int, request: Dataset) -> int:
    assoc = _modality_ae().associate("127.0.0.1", port, ae_title="RELAYTEST")
    assert assoc.is_established
    status, _ = assoc.send_n_action(request, commitment.REQUEST_COMMITMENT,
                                    StorageCommitmentPushModel, commitment.PUSH_MODEL_INSTANCE)
    assoc.release()
    return int(status.Status)


def _recorded(engine: Engine) -> int:
    with Session(engine) as session:
        return len(list(session.exec(select(Image))))


def _finish_and_clean_up(running: Relay) -> None:
    """As the sender leaves a series: DONE, its working files removed."""
    with Session(running.engine) as session:
        for image in session.exec(select(Image)):
            image.status = Status.DONE
            session.add(image)
        session.commit()
    for original in running.store.work_dir.rglob("*"):
        if original.is_file():
            original.unlink()
    assert not any(p.is_file() for p in running.store.work_dir.rglob("*"))


async def _until(check: Callable[[], bool], timeout: float = 20) -> None:
    for _ in range(int(timeout * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_a_request_without_a_transaction_or_instances_is_refused(
        relay: Callable[..., object]) -> None:
    running = await relay(ingest=False)  # type: ignore[misc]
    without_instances = Dataset()
    without_instances.TransactionUID = generate_uid()
    for request in (_request([(CTImageStorage, generate_uid())]), without_instances):
        if request is not without_instances:
            del request.TransactionUID
        status = await asyncio.to_thread(_ask_and_leave, running.settings.scp_port, request)
        assert status == commitment.INVALID_ARGUMENT
    assert running.keeper.waiting == 0


# The judgement itself, on made-up rows and folders.

def _waiting(*uids: str, deadline: float = 100.0) -> commitment.Request:
    return commitment.Request(generate_uid(), MODALITY,
                              [commitment.Reference(CTImageStorage, u) for u in uids],
                              None, deadline)


def test_an_instance_on_its_way_is_waited_for_until_the_deadline() -> None:
    arriving, recorded = generate_uid(), generate_uid()
    request = _waiting(arriving, recorded)
    rows = {recorded: str(CTImageStorage)}
    on_the_way = {staging.uid_key(arriving)}
    assert commitment.judge(request, rows, on_the_way, now=10) is None
    late = commitment.judge(request, rows, on_the_way, now=100)
    assert late is not None
    assert late.failed == [(request.references[0], commitment.PROCESSING_FAILURE)]
    assert late.committed == [request.references[1]]


def test_an_instance_that_left_the_way_without_a_row_is_a_processing_failure() -> None:
    """Set aside by ingest (unreadable, conflicting): received, never recorded."""
    quarantined, never_sent = generate_uid(), generate_uid()
    request = _waiting(quarantined, never_sent)
    assert commitment.judge(request, {}, {staging.uid_key(quarantined)}, now=1) is None
    outcome = commitment.judge(request, {}, set(), now=2)
    assert outcome is not None
    assert dict((r.sop_instance_uid, why) for r, why in outcome.failed) == {
        quarantined: commitment.PROCESSING_FAILURE, never_sent: commitment.NO_SUCH_INSTANCE}


def test_an_instance_recorded_under_another_class_is_a_conflict() -> None:
    uid = generate_uid()
    outcome = commitment.judge(_waiting(uid), {uid: str(MRImageStorage)}, set(), now=1)
    assert outcome is not None
    assert [why for _, why in outcome.failed] == [commitment.CLASS_INSTANCE_CONFLICT]


def test_the_pipeline_finds_instances_staged_handed_over_or_claimed(tmp_path: Path) -> None:
    uids = [generate_uid() for _ in range(4)]
    for folder, uid in zip(("staging/scp-a-1", "incoming/scp-b-2", "work/.claimed/scp-c-3-x",
                            "incoming/by-hand"), uids, strict=True):
        staging.write_instance(tmp_path / folder, uid, b"data")
    pipeline = commitment.Pipeline(tmp_path / "staging", tmp_path / "incoming",
                                   tmp_path / "work/.claimed")
    # A folder put into incoming by hand is not the SCP's: its files are not named by key.
    assert pipeline.keys_on_the_way() == {staging.uid_key(u) for u in uids[:3]}


def test_an_instance_staged_by_another_scp_process_is_found_on_its_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another replica on the same volume (or this one before a restart) staged it: the
    request that reaches this process waits for it rather than answering no such instance."""
    secret, uid = "a-relay-secret-of-the-site", generate_uid()
    other_process = (
        "import sys\nfrom pathlib import Path\nfrom relay_ingest import staging\n"
        "staging.key_names_with(sys.argv[1].encode())\n"
        "staging.write_instance(Path(sys.argv[2]), sys.argv[3], b'data')\n")
    subprocess.run([sys.executable, "-c", other_process, secret,
                    str(tmp_path / "staging/process-other/scp-k-1"), uid], check=True)
    monkeypatch.setattr(staging, "_name_key", staging._name_key)  # restored afterwards
    staging.key_names_with(secret.encode())
    pipeline = commitment.Pipeline(tmp_path / "staging", tmp_path / "incoming",
                                   tmp_path / "work/.claimed")
    assert commitment.judge(_waiting(uid), {}, pipeline.keys_on_the_way(), now=1) is None


def test_an_address_for_an_allowed_ae_is_read_and_a_bad_one_named(data_dir: Path) -> None:
    settings = scp_settings(data_dir, scp_allowed_aes="CT1@10.1.2.3:104,MR2")
    assert settings.scp_allowed_ae_titles == ["CT1", "MR2"]
    assert settings.scp_allowed_aes == ["CT1@10.1.2.3:104", "MR2"]  # shown as configured
    assert settings.scp_ae_addresses == {"CT1": ("10.1.2.3", 104)}
    with pytest.raises(Exception, match=r"RELAY_SCP_ALLOWED_AES.*TITLE@host:port"):
        scp_settings(data_dir, scp_allowed_aes="CT1@10.1.2.3")


@pytest.mark.orthanc
async def test_orthanc_as_the_modality_gets_its_commitment_report(
        relay: Callable[..., object], tmp_path: Path) -> None:
    """Another implementation on the requesting side: Orthanc stores a series to the
    relay, asks for commitment of it and of an instance it never sent, and takes the
    relay's report on its own DICOM port."""
    orthanc = Orthanc(tmp_path / "orthanc")
    running = await relay(  # type: ignore[misc]
        scp_allowed_aes=f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}")
    orthanc.modalities = {"relay": ["RELAYTEST", "127.0.0.1", running.settings.scp_port]}
    await asyncio.to_thread(orthanc.start)
    try:
        spec = SeriesSpec(PATIENT, instances=3)
        for path in write_series(spec, tmp_path / "series"):
            httpx.post(f"{orthanc.url}/instances", content=path.read_bytes(),
                       timeout=30).raise_for_status()
        store = httpx.post(f"{orthanc.url}/modalities/relay/store", timeout=60,
                           json={"Resources": orthanc.instances(), "Synchronous": True})
        store.raise_for_status()
        unknown = generate_uid()
        asked = [{"SOPClassUID": str(CTImageStorage), "SOPInstanceUID": uid}
                 for uid in [*spec.sop_uids, unknown]]
        request = httpx.post(f"{orthanc.url}/modalities/relay/storage-commitment",
                             json={"DicomInstances": asked}, timeout=60)
        request.raise_for_status()
        transaction = request.json()["ID"]
        outcome: dict[str, object] = {}
        for _ in range(200):
            outcome = httpx.get(f"{orthanc.url}/storage-commitment/{transaction}",
                                timeout=10).json()
            if outcome.get("Status") != "Pending":
                break
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(orthanc.stop)
    assert outcome["Status"] == "Failure"  # one instance is not committed
    assert {i["SOPInstanceUID"] for i in outcome["Success"]} == set(spec.sop_uids)  # type: ignore[attr-defined]
    assert [(f["SOPInstanceUID"], f["FailureReason"]) for f in outcome["Failures"]] == [  # type: ignore[attr-defined]
        (unknown, commitment.NO_SUCH_INSTANCE)]


def test_the_ingest_process_answers_commitment_from_what_it_recorded(tmp_path: Path) -> None:
    """`relay ingest` as a process, its own watch loop recording what its SCP staged:
    the modality keeps its association open and gets the report on it."""
    env = relay_env({}, data_dir=tmp_path / "var", scp_port=free_port(),
                    scp_ae_title="RELAYTEST", scp_allowed_aes=MODALITY, stable_age=0.5,
                    watch_interval=0.2, metrics_port=0)
    run_relay("db", "upgrade", env=env)
    process = RelayProcess("ingest", env, tmp_path / "ingest.log").start()
    port = int(env["RELAY_SCP_PORT"])
    try:
        wait_until(lambda: _answers_echo(port), 60, "the SCP")
        spec = SeriesSpec(PATIENT, instances=2)
        paths = write_series(spec, tmp_path / "series")
        unknown = generate_uid()
        request = _request([(CTImageStorage, u) for u in [*spec.sop_uids, unknown]])
        report = Report()
        assert _store_and_ask(port, paths, request, report, 30) == 0x0000
    finally:
        process.stop()
    assert report.arrived.is_set(), (tmp_path / "ingest.log").read_text()[-2000:]
    assert report.committed() == set(spec.sop_uids)
    assert report.failed() == {unknown: commitment.NO_SUCH_INSTANCE}


def _answers_echo(port: int) -> bool:
    ae = AE(ae_title=MODALITY)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="RELAYTEST")
    established = bool(assoc.is_established)
    if established:
        assoc.release()
    return established
