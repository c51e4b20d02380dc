"""C-STORE destination: against a real Orthanc's DICOM port, and against pynetdicom peers
that refuse or reject, so each failure gives its own clear error."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless
from pynetdicom import AE, AllStoragePresentationContexts, evt

from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_sender.dicom_ae import DicomDestination, presentation_contexts
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance, write_series
from tests.support.services import Orthanc, free_port

PATIENT = Patient("MRN-4004", "Liskov^Barbara")
CALLING = "RELAYSCU"


def outgoing(paths: list[Path], series_id: int = 1) -> OutgoingSeries:
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    return OutgoingSeries(series_id, str(headers[0].StudyInstanceUID),
                          str(headers[0].SeriesInstanceUID),
                          [OutgoingInstance(n, str(h.SOPInstanceUID), p)
                           for n, (h, p) in enumerate(zip(headers, paths, strict=True))])


def rle_series(folder: Path, count: int = 3) -> list[Path]:
    spec = SeriesSpec(PATIENT, instances=count)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        ds = make_instance(spec, index)
        ds.compress(RLELossless, encoding_plugin="pydicom")
        paths.append(folder / f"RLE{index:03d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


@pytest.fixture(scope="module")
def dicom_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """An Orthanc that knows the relay's calling AE, so it answers its C-FIND."""
    server = Orthanc(tmp_path_factory.mktemp("orthanc-dimse"))
    server.modalities = {"relay": [CALLING, "127.0.0.1", free_port()]}
    server.start()
    yield server
    server.stop()


def destination(orthanc: Orthanc) -> DicomDestination:
    return DicomDestination("127.0.0.1", orthanc.dicom_port, orthanc.aet, CALLING, timeout=10)


@pytest.mark.orthanc
def test_c_store_to_orthanc_then_c_find_proves_receipt(dicom_orthanc: Orthanc,
                                                       tmp_path: Path) -> None:
    dicom_orthanc.clear()
    paths = write_series(SeriesSpec(PATIENT, instances=6), tmp_path / "series")
    series = outgoing(paths)
    dest = destination(dicom_orthanc)
    assert dest.missing(series) == {i.sop_instance_uid for i in series.instances}
    dest.send(series)
    assert dest.missing(series) == set()
    assert len(dicom_orthanc.instances()) == 6


@pytest.mark.orthanc
def test_a_compressed_series_arrives_byte_identical(dicom_orthanc: Orthanc,
                                                   tmp_path: Path) -> None:
    dicom_orthanc.clear()
    paths = rle_series(tmp_path / "rle")
    dest = destination(dicom_orthanc)
    series = outgoing(paths)
    assert presentation_contexts(paths) == [(str(dcmread(paths[0]).SOPClassUID), RLELossless)]
    dest.send(series)
    assert dest.missing(series) == set()
    sent = {dcmread(p).SOPInstanceUID: dcmread(p) for p in paths}
    for instance_id in dicom_orthanc.instances():
        raw = httpx.get(f"{dicom_orthanc.url}/instances/{instance_id}/file", timeout=30).content
        held = dcmread(io.BytesIO(raw))
        assert held.file_meta.TransferSyntaxUID == RLELossless
        assert held.PixelData == sent[held.SOPInstanceUID].PixelData


def test_nobody_listening_is_a_clear_error(tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    dest = DicomDestination("127.0.0.1", free_port(), "NOBODY", CALLING, timeout=3)
    with pytest.raises(DestinationError, match="could not be reached"):
        dest.send(outgoing(paths))


def _peer(status: int, require_calling: list[str] | None = None):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="PEER")
    ae.supported_contexts = AllStoragePresentationContexts
    ae.require_calling_aet = require_calling or []
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, lambda _event: status)])
    return server, port


def test_a_refused_association_is_a_clear_error(tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    server, port = _peer(0x0000, require_calling=["SOMEONEELSE"])
    try:
        dest = DicomDestination("127.0.0.1", port, "PEER", CALLING, timeout=5)
        with pytest.raises(DestinationError, match="refused the association"):
            dest.send(outgoing(paths))
    finally:
        server.shutdown()


def _comment(status: int, comment: str) -> Dataset:
    answer = Dataset()
    answer.Status, answer.ErrorComment = status, comment
    return answer


@pytest.mark.parametrize(("answer", "expected"), [
    (0xA700, r"rejected image 0: status 0xA700$"),
    (_comment(0xA700, "archive full"), r"rejected image 0: status 0xA700 \(archive full\)"),
])
def test_a_rejected_instance_names_its_status(tmp_path: Path, answer: int | Dataset,
                                              expected: str) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=2), tmp_path / "series")
    server, port = _peer(answer)  # type: ignore[arg-type]
    try:
        dest = DicomDestination("127.0.0.1", port, "PEER", CALLING, timeout=5)
        with pytest.raises(DestinationError, match=expected):
            dest.send(outgoing(paths))
    finally:
        server.shutdown()


def test_a_peer_that_aborts_mid_series_is_a_clear_error_without_waiting_out_the_timeout(
        tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "series")
    ae = AE(ae_title="PEER")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()

    def abort(event: evt.Event) -> int:
        event.assoc.abort()
        return 0x0000

    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, abort)])
    try:
        dest = DicomDestination("127.0.0.1", port, "PEER", CALLING, timeout=30)
        started = time.monotonic()
        with pytest.raises(DestinationError, match=r"no answer for image 0"):
            dest.send(outgoing(paths))
        assert time.monotonic() - started < 15
    finally:
        server.shutdown()
