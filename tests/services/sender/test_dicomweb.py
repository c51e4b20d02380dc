"""STOW-RS destination against Orthanc's DICOMweb plugin, verified by QIDO-RS."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import RLELossless

from relay_sender.destinations import DestinationError
from relay_sender.dicomweb import DicomWebDestination, batches
from tests.services.sender.test_dicom_ae import PATIENT, outgoing, rle_series
from tests.support.dicom_factory import SeriesSpec, write_series
from tests.support.services import Orthanc, free_port


def destination(orthanc: Orthanc) -> DicomWebDestination:
    return DicomWebDestination(f"{orthanc.url}/dicom-web", timeout=30)


@pytest.mark.orthanc
def test_stow_rs_then_qido_rs_proves_receipt(orthanc: Orthanc, tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=7), tmp_path / "series")
    series = outgoing(paths)
    dest = destination(orthanc)
    assert dest.missing(series) == {i.sop_instance_uid for i in series.instances}
    dest.send(series)
    assert dest.missing(series) == set()
    assert len(orthanc.instances()) == 7


@pytest.mark.orthanc
def test_a_compressed_series_arrives_byte_identical(orthanc: Orthanc, tmp_path: Path) -> None:
    paths = rle_series(tmp_path / "rle")
    dest = destination(orthanc)
    dest.send(outgoing(paths))
    sent = {dcmread(p).SOPInstanceUID: dcmread(p) for p in paths}
    for instance_id in orthanc.instances():
        raw = httpx.get(f"{orthanc.url}/instances/{instance_id}/file", timeout=30).content
        held = dcmread(io.BytesIO(raw))
        assert held.file_meta.TransferSyntaxUID == RLELossless
        assert held.PixelData == sent[held.SOPInstanceUID].PixelData


@pytest.mark.orthanc
def test_a_refused_batch_is_a_clear_error(orthanc: Orthanc, tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    dest = DicomWebDestination(f"{orthanc.url}/no-such-root", timeout=10)
    with pytest.raises(DestinationError, match="HTTP 404"):
        dest.send(outgoing(paths))


def test_nobody_listening_is_a_clear_error(tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    dest = DicomWebDestination(f"http://127.0.0.1:{free_port()}/dicom-web", timeout=3)
    with pytest.raises(DestinationError, match="unreachable"):
        dest.send(outgoing(paths))


def test_batches_are_bounded(tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=250), tmp_path / "series")
    assert [len(b) for b in batches(outgoing(paths).instances)] == [100, 100, 50]


def test_instances_failed_inside_an_accepted_stow_are_an_error(tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=2), tmp_path / "series")
    series = outgoing(paths)
    failed = {"00081198": {"vr": "SQ", "Value": [{
        "00081155": {"vr": "UI", "Value": [series.instances[0].sop_instance_uid]},
        "00081197": {"vr": "US", "Value": [0xA700]}}]}}
    dest = DicomWebDestination("http://archive.invalid/dicom-web")
    dest._client = httpx.Client(base_url="http://archive.invalid/dicom-web", transport=(
        httpx.MockTransport(lambda _request: httpx.Response(202, json=failed))))
    with pytest.raises(DestinationError, match=r"rejected 1 of 2 .*0xA700"):
        dest.send(series)
