"""What arrives on disk cannot reach beyond incoming/ or exhaust memory: links are
never followed, deflate bombs are named bad files. Real files, SQLite, the watch loop."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

import pytest
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlmodel import Session, select

from relay_ingest import main, scp
from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.db import make_engine, upgrade
from relay_shared.deid import Pseudonymizer
from relay_shared.models import Image, Status
from relay_shared.paths import WorkStore
from relay_shared.runtime import build_runtime
from relay_shared.settings import Settings, load_settings
from tests.services.ingest.conftest import delivered
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.hostile import deflate_bomb

UID_OF = Pseudonymizer(b"ingest-test-secret").uid
PATIENT = Patient("MRN-5005", "Hamilton^Margaret")
MIB = 1024 * 1024
# Past the default RELAY_MAX_INFLATED_BYTES (256 MiB), from a file of about 300 KB.
BOMB_BYTES = 300 * MIB


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _outside_target(tmp_path: Path) -> Path:
    """A folder outside incoming holding DICOM and other files, as a link would point at."""
    target = tmp_path / "elsewhere" / "archive"
    write_series(SeriesSpec(PATIENT, instances=3), target)
    (target / "notes.txt").write_text("not DICOM")
    return target


async def _watch(settings: Settings, seconds: float) -> None:
    upgrade(settings.sqlalchemy_url)
    rt = build_runtime(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(main.run(rt, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    rt.engine.dispose()


async def test_a_linked_folder_in_incoming_is_refused_left_in_place_and_its_target_untouched(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(data_dir=tmp_path / "var", scp_port=0, watch_interval=0.1)
    settings.ensure_dirs()
    assert settings.incoming_dir is not None and settings.work_dir is not None
    target = _outside_target(tmp_path)
    before = _snapshot(target)
    link = settings.incoming_dir / "ST-LINKED"
    link.symlink_to(target, target_is_directory=True)
    write_series(SeriesSpec(PATIENT, instances=2), settings.incoming_dir / "ST-REAL")
    with caplog.at_level(logging.WARNING, logger="relay_ingest.main"):
        await _watch(settings, 1.5)
    assert _snapshot(target) == before, "nothing in the link's target was moved or changed"
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert not (settings.incoming_dir / "ST-REAL").exists(), "the real delivery was taken"
    refusals = [r for r in caplog.records if "symbolic link" in r.getMessage()]
    assert len(refusals) == 1 and getattr(refusals[0], "link", None) == "ST-LINKED"


def test_a_linked_file_in_a_delivery_is_set_aside_as_a_link_and_its_target_untouched(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    engine, store = make_engine(url), WorkStore(tmp_path / "work", tmp_path / "quarantine")
    target = _outside_target(tmp_path)
    before = _snapshot(target)
    delivery = tmp_path / "incoming" / "ST-1"
    write_series(SeriesSpec(PATIENT, instances=2), delivery)
    outside_file = next(target.glob("*.dcm"))
    (delivery / "linked.dcm").symlink_to(outside_file)
    (delivery / "linked-folder").symlink_to(target, target_is_directory=True)
    ingest_claimed(claim(delivery, store), engine, store, UID_OF, "relay.deid")
    assert _snapshot(target) == before
    with Session(engine) as session:
        images = list(session.exec(select(Image)))
    assert sorted(i.status.value for i in images) == ["FAILED", "FAILED", "NEW", "NEW"]
    refused = [i for i in images if i.status is Status.FAILED]
    assert {i.reason for i in refused} == {"a symbolic link, not a file: refused, its target "
                                           "is not read"}
    assert all(Path(i.quarantine_path or "").is_symlink() for i in refused)


def test_a_deflate_bomb_in_a_delivery_is_a_named_bad_file_and_the_rest_goes_on(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    engine, store = make_engine(url), WorkStore(tmp_path / "work", tmp_path / "quarantine")
    delivery = tmp_path / "incoming" / "ST-2"
    write_series(SeriesSpec(PATIENT, instances=2), delivery)
    deflate_bomb(delivery / "bomb.dcm", BOMB_BYTES)
    ingest_claimed(claim(delivery, store), engine, store, UID_OF, "relay.deid")
    with Session(engine) as session:
        images = list(session.exec(select(Image)))
    [bomb] = [i for i in images if i.status is Status.FAILED]
    assert bomb.reason == "the deflated data set inflates beyond RELAY_MAX_INFLATED_BYTES"
    assert len([i for i in images if i.status is Status.NEW]) == 2


def _send_file(port: int, path: Path) -> int:
    """Send a file's bytes as they are (pynetdicom's chunked send), never decoding it."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1.99")
    assoc = ae.associate("127.0.0.1", port, ae_title="RELAYTEST")
    assert assoc.is_established
    status = int(assoc.send_c_store(path).Status)
    assoc.release()
    return status


async def test_a_deflate_bomb_sent_to_the_scp_is_refused_and_nothing_kept(
        running_scp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    settings = await running_scp()
    bomb = deflate_bomb(tmp_path / "bomb.dcm", BOMB_BYTES)
    status = await asyncio.to_thread(_send_file, settings.scp_port, bomb)
    assert status == scp.OUT_OF_RESOURCES
    await asyncio.sleep(1)
    assert delivered(settings) == []


def test_a_pipe_in_a_delivery_is_recorded_as_refused_never_opened_nor_dropped(
        tmp_path: Path) -> None:
    """Opening a named pipe blocks until someone writes to it, so ingest never opens
    one; and it is recorded by name like any refused file, not deleted unrecorded."""
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    engine, store = make_engine(url), WorkStore(tmp_path / "work", tmp_path / "quarantine")
    delivery = tmp_path / "incoming" / "ST-3"
    write_series(SeriesSpec(PATIENT, instances=1), delivery)
    os.mkfifo(delivery / "pipe.dcm")
    claimed = claim(delivery, store)
    worker = threading.Thread(target=ingest_claimed, daemon=True,
                              args=(claimed, engine, store, UID_OF, "relay.deid"))
    worker.start()
    worker.join(20)
    if worker.is_alive():  # let the blocked reader go before failing
        pipe = next(p for p in [*store.claimed_dir.rglob("pipe.dcm"),
                                *store.quarantine_dir.rglob("pipe*.dcm")])
        with open(pipe, "wb"):
            pass
        pytest.fail("ingest blocked on a named pipe")
    with Session(engine) as session:
        images = list(session.exec(select(Image)))
    assert sorted(i.status.value for i in images) == ["FAILED", "NEW"]
    [refused] = [i for i in images if i.status is Status.FAILED]
    assert refused.reason == "not a regular file (a pipe, socket or device): refused, not read"
