"""The SCP and its staging: real associations on loopback, from pynetdicom and dcmtk."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from relay_ingest import scp, staging
from relay_ingest.origin import OriginSeal
from relay_ingest.staging import Staging
from relay_shared.dicomfiles import DEFAULT_LIMITS
from tests.services.ingest.conftest import delivered, wait_for_files
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance, write_series
from tests.support.tools import needs_tool

SEAL = OriginSeal(b"scp-test-secret")

PATIENT = Patient("MRN-3003", "Hopper^Grace")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def land(area: Staging, series_uid: str, sop_uid: str, data: bytes) -> None:
    area.store(series_uid, sop_uid, data)


def test_a_series_closes_only_after_the_stable_age(tmp_path: Path) -> None:
    clock = FakeClock()
    area = Staging(tmp_path / "staging", tmp_path / "incoming", 5.0, SEAL, clock)
    land(area, "1.2.3", "1.2.3.1", b"one")
    clock.now = 3
    land(area, "1.2.3", "1.2.3.2", b"two")
    clock.now = 7.9
    assert area.close_stable() == []
    clock.now = 8.0
    [handed] = area.close_stable()
    assert handed.parent == tmp_path / "incoming"
    assert sorted(p.read_bytes() for p in handed.glob("*.dcm")) == [b"one", b"two"]
    assert not any((tmp_path / "staging").iterdir())


def test_each_series_is_its_own_delivery(tmp_path: Path) -> None:
    area = Staging(tmp_path / "staging", tmp_path / "incoming", 0.0, SEAL)
    land(area, "1.2.3", "1.2.3.1", b"one")
    land(area, "1.2.4", "1.2.4.1", b"other")
    assert area.open_series == 2 and len(area.close_stable()) == 2


def test_a_late_instance_starts_a_new_delivery_of_its_series(tmp_path: Path) -> None:
    clock = FakeClock()
    area = Staging(tmp_path / "staging", tmp_path / "incoming", 1.0, SEAL, clock)
    land(area, "1.2.3", "1.2.3.1", b"one")
    clock.now = 2
    [first] = area.close_stable()
    land(area, "1.2.3", "1.2.3.2", b"late")
    clock.now = 4
    [second] = area.close_stable()
    assert first != second and [p.read_bytes() for p in second.glob("*.dcm")] == [b"late"]


def test_recovery_hands_over_whole_files_and_drops_partial_ones(tmp_path: Path) -> None:
    folder = tmp_path / "staging" / "scp-abc-1"
    staging.write_instance(folder, "1.2.3.1", b"whole")
    (folder / "x.dcm.part").write_bytes(b"half")
    (tmp_path / "staging" / "scp-empty-2").mkdir()
    handed = staging.recover(tmp_path / "staging", tmp_path / "incoming")
    assert sorted(p.read_bytes() for d in handed for p in d.glob("*.dcm")) == [b"whole"]
    assert not any((tmp_path / "staging").iterdir())


def test_a_series_being_written_is_not_closed_under_the_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that outlasts the stable age keeps its delivery open until it is done."""
    clock = FakeClock()
    area = Staging(tmp_path / "staging", tmp_path / "incoming", 1.0, SEAL, clock)
    land(area, "1.2.3", "1.2.3.1", b"one")
    writing, release = threading.Event(), threading.Event()
    write = staging.write_instance

    def slow_write(folder: Path, sop_uid: str, *parts: bytes) -> Path:
        writing.set()
        release.wait(10)
        return write(folder, sop_uid, *parts)

    monkeypatch.setattr(staging, "write_instance", slow_write)
    writer = threading.Thread(target=land, args=(area, "1.2.3", "1.2.3.2", b"two"))
    writer.start()
    assert writing.wait(10)
    clock.now = 5
    assert area.close_stable() == []
    release.set()
    writer.join(10)
    clock.now = 10
    [handed] = area.close_stable()
    assert sorted(p.read_bytes() for p in handed.glob("*.dcm")) == [b"one", b"two"]


def _pynetdicom_store(port: int, paths: list[Path], calling: str = "MODALITY") -> list[int]:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="RELAYTEST")
    assert assoc.is_established
    statuses = [int(assoc.send_c_store(dcmread(p)).Status) for p in paths]
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()
    return statuses


async def test_instances_are_written_as_received_and_handed_over(
        running_scp: Callable[..., object], tmp_path: Path) -> None:
    settings = await running_scp()  # type: ignore[misc]
    paths = write_series(SeriesSpec(PATIENT, instances=5), tmp_path / "series")
    statuses = await asyncio.to_thread(_pynetdicom_store, settings.scp_port, paths)
    assert statuses == [0] * 5
    files = await wait_for_files(settings, 5)
    assert len({p.parent for p in files}) == 1, "one series, one delivery"
    sent = {dcmread(p).SOPInstanceUID: p for p in paths}
    for path in files:
        received = dcmread(path)
        assert received.PixelData == dcmread(sent[received.SOPInstanceUID]).PixelData


async def test_a_calling_ae_not_allowed_is_refused(running_scp: Callable[..., object]) -> None:
    settings = await running_scp(scp_allowed_aes="SCANNER1")  # type: ignore[misc]
    ae = AE(ae_title="INTRUDER")
    ae.add_requested_context(Verification)
    assoc = await asyncio.to_thread(ae.associate, "127.0.0.1", settings.scp_port,
                                    ae_title="RELAYTEST")
    assert assoc.is_rejected


async def test_an_address_not_allowed_is_refused(running_scp: Callable[..., object]) -> None:
    """Closed when the connection opens, before the request is read: no association."""
    settings = await running_scp(scp_allowed_hosts="10.0.0.0/8")  # type: ignore[misc]
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = await asyncio.to_thread(ae.associate, "127.0.0.1", settings.scp_port,
                                    ae_title="RELAYTEST")
    assert not assoc.is_established and not assoc.is_rejected


def rle_series(folder: Path, count: int = 3) -> list[Path]:
    spec = SeriesSpec(PATIENT, instances=count)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        ds = make_instance(spec, index)
        ds.compress(RLELossless, encoding_plugin="pydicom")
        path = folder / f"RLE{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def dcmtk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


pytestmark_dcmtk = needs_tool("storescu", "dcmtk")


@pytest.mark.dcmtk
@pytestmark_dcmtk
async def test_echoscu_and_storescu_talk_to_the_scp(
        running_scp: Callable[..., object], tmp_path: Path) -> None:
    settings = await running_scp(scp_allowed_aes="STORESCU,ECHOSCU")  # type: ignore[misc]
    port = str(settings.scp_port)
    echo = await asyncio.to_thread(dcmtk, "echoscu", "-aec", "RELAYTEST", "127.0.0.1", port)
    assert echo.returncode == 0, echo.stderr
    write_series(SeriesSpec(PATIENT, instances=4), tmp_path / "plain")
    rle = rle_series(tmp_path / "rle")
    for folder in ("plain", "rle"):
        stored = await asyncio.to_thread(dcmtk, "storescu", "-aec", "RELAYTEST", "-xr", "+sd",
                                         "127.0.0.1", port, str(tmp_path / folder))
        assert stored.returncode == 0, stored.stderr
    files = await wait_for_files(settings, 7)
    by_sop = {dcmread(p).SOPInstanceUID: p for p in files}
    for path in rle:
        received = dcmread(by_sop[dcmread(path).SOPInstanceUID])
        assert received.file_meta.TransferSyntaxUID == RLELossless
        assert received.PixelData == dcmread(path).PixelData


@pytest.mark.dcmtk
@pytestmark_dcmtk
async def test_storescu_with_an_unknown_calling_ae_is_refused(
        running_scp: Callable[..., object], tmp_path: Path) -> None:
    settings = await running_scp(scp_allowed_aes="SCANNER1")  # type: ignore[misc]
    paths = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "plain")
    result = await asyncio.to_thread(dcmtk, "storescu", "-aet", "INTRUDER", "-aec", "RELAYTEST",
                                     "127.0.0.1", str(settings.scp_port), str(paths[0]))
    assert result.returncode != 0
    assert "Rejected" in result.stdout + result.stderr
    await asyncio.sleep(1)
    assert delivered(settings) == []


@pytest.mark.parametrize("sop_instance_uid", ["1.2.3.4", "1.2.3.45"])  # even and odd length
def test_the_file_meta_written_is_the_one_pynetdicom_would_write(sop_instance_uid: str) -> None:
    from pynetdicom.dsutils import create_file_meta, encode_file_meta
    expected = encode_file_meta(create_file_meta(
        sop_class_uid=CTImageStorage, sop_instance_uid=sop_instance_uid,
        transfer_syntax=RLELossless))
    prefix = scp.part10_prefix(CTImageStorage, sop_instance_uid, RLELossless)
    assert prefix == b"\x00" * 128 + b"DICM" + expected


def test_the_series_is_found_in_deflated_and_raw_encodings(tmp_path: Path) -> None:
    for syntax in ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"):
        ds = make_instance(SeriesSpec(PATIENT, instances=1), 0)
        ds.file_meta.TransferSyntaxUID = syntax
        path = tmp_path / f"{syntax}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert scp._series_uid(path, DEFAULT_LIMITS) == ds.SeriesInstanceUID


async def test_an_instance_without_a_series_is_refused_with_its_status_and_nothing_kept(
        running_scp: Callable[..., object], tmp_path: Path) -> None:
    """The refusal goes out through the relay's own response encoder: the peer must
    read it as the status the handler gave, for the right message."""
    settings = await running_scp()  # type: ignore[misc]
    good, bad = write_series(SeriesSpec(PATIENT, instances=2), tmp_path / "series")
    ds = dcmread(bad)
    del ds.SeriesInstanceUID
    ds.save_as(bad, enforce_file_format=True)
    statuses = await asyncio.to_thread(_pynetdicom_store, settings.scp_port, [good, bad, good])
    assert statuses == [0x0000, scp.CANNOT_UNDERSTAND, 0x0000]
    assert len(await wait_for_files(settings, 2)) == 2
