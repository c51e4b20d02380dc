from pathlib import Path

import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from relay_shared.dicomfiles import (
    IncompleteDicomError,
    NotDicomError,
    TruncatedDicomError,
    read_header,
)
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance


@pytest.fixture
def spec() -> SeriesSpec:
    return SeriesSpec(Patient("MRN-1", "Doe^Jane"), instances=2, rows=64, columns=64)


def _write(spec: SeriesSpec, path: Path, encapsulated: bool = False) -> Path:
    ds = make_instance(spec, 0)
    if encapsulated:
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.PixelData = encapsulate([b"\x00" * 5000])
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_reads_the_uids_of_a_whole_file(tmp_path: Path, spec: SeriesSpec) -> None:
    header = read_header(_write(spec, tmp_path / "a.dcm"))
    assert header.sop_instance_uid == spec.sop_uids[0]
    assert header.series_instance_uid == spec.series_uid
    assert header.modality == "CT"


@pytest.mark.parametrize("encapsulated", [False, True])
@pytest.mark.parametrize("cut", [1, 100, 3000])
def test_a_file_cut_in_its_pixel_data_is_truncated(tmp_path: Path, spec: SeriesSpec,
                                                   encapsulated: bool, cut: int) -> None:
    path = _write(spec, tmp_path / "a.dcm", encapsulated)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(TruncatedDicomError, match=r"ends early|unreadable"):
        read_header(path)


def test_a_file_cut_in_its_header_is_truncated(tmp_path: Path, spec: SeriesSpec) -> None:
    path = _write(spec, tmp_path / "a.dcm")
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(TruncatedDicomError):
        read_header(path)


def test_text_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(NotDicomError, match="not a DICOM"):
        read_header(path)


def test_missing_uids_are_named(tmp_path: Path, spec: SeriesSpec) -> None:
    ds = make_instance(spec, 0)
    del ds.SeriesInstanceUID
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    with pytest.raises(IncompleteDicomError, match="SeriesInstanceUID"):
        read_header(tmp_path / "a.dcm")
