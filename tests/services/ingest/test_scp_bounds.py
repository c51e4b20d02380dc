"""What a peer can make the SCP hold: nothing before it is allowed, within bounds after.

Real associations and raw sockets on loopback against the SCP in this process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import tracemalloc
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from relay_ingest import scp
from relay_shared.settings import Settings
from tests.services.ingest.conftest import delivered, wait_for_files
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance, write_series
from tests.support.hostile import (
    A_ASSOCIATE_RQ_TYPE,
    P_DATA_TF_TYPE,
    associate_rq,
    closed_without_reading,
    pdu_header,
)
from tests.support.tools import needs_tool

PATIENT = Patient("MRN-4004", "Lovelace^Ada")
BIG = 64 * 1024 * 1024
# What the relay allows an A-ASSOCIATE-RQ (receiving.ASSOCIATION_PDU_LIMIT).
ASSOCIATION_PDU_LIMIT = 256 * 1024
Start = Callable[..., object]


async def _start(running_scp: Start, **overrides: object) -> Settings:
    return await running_scp(**overrides)  # type: ignore[misc, no-any-return]


def _spool(settings: Settings) -> list[Path]:
    assert settings.staging_dir is not None
    return list((settings.staging_dir / ".receiving").iterdir())


async def test_an_address_not_allowed_is_closed_before_its_request_is_read(
        running_scp: Start) -> None:
    settings = await _start(running_scp, scp_allowed_hosts="10.0.0.0/8")
    header = pdu_header(A_ASSOCIATE_RQ_TYPE, BIG)
    assert await asyncio.to_thread(closed_without_reading, settings.scp_port, b"", header)


async def test_an_association_request_longer_than_any_real_one_is_not_read(
        running_scp: Start) -> None:
    settings = await _start(running_scp)
    header = pdu_header(A_ASSOCIATE_RQ_TYPE, ASSOCIATION_PDU_LIMIT + 1)
    assert await asyncio.to_thread(closed_without_reading, settings.scp_port, b"", header)


async def test_a_refused_calling_ae_cannot_push_data_after_its_request(
        running_scp: Start) -> None:
    settings = await _start(running_scp, scp_allowed_aes="SCANNER1")
    request = associate_rq("INTRUDER", "RELAYTEST")
    header = pdu_header(P_DATA_TF_TYPE, BIG)
    assert await asyncio.to_thread(closed_without_reading, settings.scp_port, request, header)


async def test_a_pdu_longer_than_the_negotiated_maximum_is_not_read(running_scp: Start) -> None:
    settings = await _start(running_scp, scp_allowed_aes="MODALITY")
    request = associate_rq("MODALITY", "RELAYTEST")
    header = pdu_header(P_DATA_TF_TYPE, scp.MAX_PDU + 1)
    assert await asyncio.to_thread(closed_without_reading, settings.scp_port, request, header)


def _store(port: int, paths: list[Path]) -> list[int]:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="RELAYTEST")
    assert assoc.is_established
    statuses = [int(assoc.send_c_store(dcmread(p)).Status) for p in paths]
    assoc.release()
    return statuses


def _large_instance(path: Path, frames: int) -> Path:
    """A multi-frame CT of ``frames`` 512x512 16-bit frames, random so it is not small."""
    ds = make_instance(SeriesSpec(PATIENT, instances=1), 0)
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, 512, 512
    pixels = np.random.default_rng(7).integers(0, 4096, (frames, 512, 512), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


async def test_an_instance_over_the_size_cap_is_refused_and_nothing_kept(
        running_scp: Start, tmp_path: Path) -> None:
    settings = await _start(running_scp, max_instance_bytes=1024 * 1024)
    small = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "small")
    large = _large_instance(tmp_path / "large" / "large.dcm", frames=4)
    statuses = await asyncio.to_thread(_store, settings.scp_port, [large, *small])
    assert statuses == [scp.OUT_OF_RESOURCES, 0]
    assert len(await wait_for_files(settings, 1)) == 1
    await asyncio.sleep(0.5)
    assert len(delivered(settings)) == 1 and _spool(settings) == []


@pytest.mark.dcmtk
@needs_tool("storescu", "dcmtk")
async def test_a_received_data_set_goes_to_disk_as_it_arrives_not_into_memory(
        running_scp: Start, tmp_path: Path) -> None:
    """storescu sends 64 MiB; the SCP (the only thing in this process receiving it)
    holds a few PDUs of it at a time, not the data set."""
    settings = await _start(running_scp)
    large = _large_instance(tmp_path / "large" / "large.dcm", frames=128)
    tracemalloc.start()
    try:
        sent = await asyncio.to_thread(subprocess.run, [
            "storescu", "-aec", "RELAYTEST", "-xs", "127.0.0.1", str(settings.scp_port),
            str(large)], capture_output=True, text=True, timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent.returncode == 0, sent.stderr
    [received] = await wait_for_files(settings, 1)
    assert received.stat().st_size >= large.stat().st_size - 1024
    assert peak < 32 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held while receiving 64 MiB"


async def test_associations_beyond_the_cap_are_refused(running_scp: Start) -> None:
    settings = await _start(running_scp, scp_max_associations=2)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    held = [await asyncio.to_thread(ae.associate, "127.0.0.1", settings.scp_port,
                                    ae_title="RELAYTEST") for _ in range(2)]
    extra = await asyncio.to_thread(ae.associate, "127.0.0.1", settings.scp_port,
                                    ae_title="RELAYTEST")
    try:
        assert all(a.is_established for a in held) and extra.is_rejected
    finally:
        for assoc in held:
            assoc.release()


def _store_cut_short(port: int, path: Path) -> None:
    """Associate, send a C-STORE request and half its data set, then drop the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(associate_rq("MODALITY", "RELAYTEST", CTImageStorage))
        assert sock.recv(6)[0] == 0x02, "the association is accepted"
        sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            while sock.recv(65536):
                pass
        request = C_STORE()
        request.MessageID, request.AffectedSOPClassUID = 1, CTImageStorage
        request.AffectedSOPInstanceUID = dcmread(path).SOPInstanceUID
        request.DataSet = BytesIO(path.read_bytes()[132 + 200:])
        message = C_STORE_RQ()
        message.primitive_to_message(request)
        fragments = list(message.encode_msg(1, 16384))
        for primitive in fragments[:len(fragments) // 2]:
            pdu = P_DATA_TF()
            pdu.from_primitive(primitive)
            sock.sendall(pdu.encode())


async def test_a_data_set_cut_short_by_its_sender_leaves_nothing_behind(
        running_scp: Start, tmp_path: Path) -> None:
    settings = await _start(running_scp)
    large = _large_instance(tmp_path / "large" / "large.dcm", frames=2)
    await asyncio.to_thread(_store_cut_short, settings.scp_port, large)
    for _ in range(50):
        await asyncio.sleep(0.1)
        if not _spool(settings):
            break
    assert _spool(settings) == [] and delivered(settings) == []


def _closed_while_idle(port: int, within: float = 3.0) -> bool:
    """Connect and send nothing: whether the relay closes the connection meanwhile."""
    with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


async def test_connections_beyond_twice_the_association_cap_are_closed_unread(
        running_scp: Start) -> None:
    """Idle connections that never ask for an association each hold a thread until
    pynetdicom's 30 s timer: past twice the cap, a new one is closed at once."""
    settings = await _start(running_scp, scp_max_associations=2)
    port = settings.scp_port
    assert not await asyncio.to_thread(_closed_while_idle, port, 1.0), "below the cap: kept"
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        await asyncio.sleep(0.5)
        assert await asyncio.to_thread(_closed_while_idle, port)
    finally:
        for sock in idle:
            sock.close()
