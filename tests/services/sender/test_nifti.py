"""DICOM slices to one NIfTI volume: geometry in RAS, voxels in place, and the series
that are kept as DICOM, each with its reason."""

from __future__ import annotations

import gzip
import io
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from relay_sender.nifti import NotAVolume, to_volume
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance

PATIENT = Patient("MRN-5005", "Hopper^Grace")
ROWS, COLUMNS, SLICES = 32, 28, 20  # not square, so a swapped axis shows


def ct_slices(spec: SeriesSpec, orientation: list[float] | None = None,
              step: float = 1.25) -> list[Dataset]:
    """A CT stack as a scanner writes it: each slice one step further along the normal
    of its plane, from a corner that is not the origin."""
    orientation = orientation or [1, 0, 0, 0, 1, 0]
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, column)
    corner = np.array([-120.5, -98.25, -310.0])
    slices = []
    for index in range(spec.instances):
        ds = make_instance(spec, index)
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [round(float(v), 4) for v in corner + normal * step * index]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.6], step  # row spacing, column spacing
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        slices.append(ds)
    return slices


def save(slices: list[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in slices:
        paths.append(folder / f"{ds.InstanceNumber:04d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    random.Random(7).shuffle(paths)  # the order of files says nothing about geometry
    return paths


def expected_ras_affine(paths: list[Path]) -> np.ndarray:
    """Worked out from the tags alone: voxel (i column, j row, k slice) to RAS mm."""
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    iop = np.array(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    headers.sort(key=lambda h: float(np.dot(np.array(h.ImagePositionPatient, float), normal)))
    first = np.array(headers[0].ImagePositionPatient, float)
    last = np.array(headers[-1].ImagePositionPatient, float)
    row_spacing, column_spacing = (float(v) for v in headers[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * column_spacing
    lps[:3, 1] = iop[3:] * row_spacing
    lps[:3, 2] = (last - first) / (len(headers) - 1)
    lps[:3, 3] = first
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def load(content: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(content))


@pytest.mark.parametrize("orientation", [
    [1, 0, 0, 0, 1, 0],  # axial
    [0.866025, 0.5, 0, -0.5, 0.866025, 0],  # axial, turned 30 degrees in plane
    [1, 0, 0, 0, 0, -1],  # coronal
])
def test_a_stack_becomes_one_volume_with_the_dicom_geometry(tmp_path: Path,
                                                            orientation: list[float]) -> None:
    spec = SeriesSpec(PATIENT, instances=SLICES, rows=ROWS, columns=COLUMNS)
    paths = save(ct_slices(spec, orientation), tmp_path / "ct")
    volume = to_volume(paths)
    image = load(volume.content)
    assert image.shape == volume.shape == (COLUMNS, ROWS, SLICES)
    np.testing.assert_allclose(image.affine, expected_ras_affine(paths), atol=1e-4)
    np.testing.assert_allclose(image.header.get_sform(), image.affine, atol=1e-4)
    assert int(image.header["sform_code"]) == int(image.header["qform_code"]) == 1
    np.testing.assert_allclose(image.header.get_zooms(), (0.6, 0.7, 1.25), atol=1e-4)


def test_voxels_are_where_the_slices_put_them(tmp_path: Path) -> None:
    spec = SeriesSpec(PATIENT, instances=SLICES, rows=ROWS, columns=COLUMNS)
    slices = ct_slices(spec)
    image = load(to_volume(save(slices, tmp_path / "ct")).content)
    raw = np.asarray(image.dataobj.get_unscaled())
    for k, ds in enumerate(slices):  # written in position order, so slice k is slices[k]
        np.testing.assert_array_equal(raw[:, :, k], ds.pixel_array.T)
    assert image.dataobj.slope == 1 and image.dataobj.inter == -1024  # Hounsfield units
    assert float(image.get_fdata()[0, 0, 0]) == float(slices[0].pixel_array[0, 0]) - 1024


def test_the_same_series_gives_the_same_bytes(tmp_path: Path) -> None:
    spec = SeriesSpec(PATIENT, instances=4)
    paths = save(ct_slices(spec), tmp_path / "ct")
    assert to_volume(paths).content == to_volume(list(reversed(paths))).content


def _reason(paths: list[Path]) -> str:
    with pytest.raises(NotAVolume) as caught:
        to_volume(paths)
    return str(caught.value)


def test_a_single_image_stays_dicom(tmp_path: Path) -> None:
    spec = SeriesSpec(PATIENT, instances=1)
    assert _reason(save(ct_slices(spec), tmp_path / "one")) == "a single image"


def test_a_localizer_stays_dicom(tmp_path: Path) -> None:
    slices = ct_slices(SeriesSpec(PATIENT, instances=3))
    for ds in slices:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    assert _reason(save(slices, tmp_path / "scout")) == "a localizer"


def test_mixed_orientations_stay_dicom(tmp_path: Path) -> None:
    slices = ct_slices(SeriesSpec(PATIENT, instances=4))
    slices[2].ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    assert _reason(save(slices, tmp_path / "mixed")) == "mixed orientations"


@pytest.mark.parametrize(("change", "reason"), [
    (lambda s: setattr(s[3], "ImagePositionPatient", s[2].ImagePositionPatient),
     "several images at one position (phases or repeats)"),
    (lambda s: setattr(s[3], "ImagePositionPatient", [-120.5, -98.25, -300.0]),
     "uneven slice spacing"),
    (lambda s: [setattr(ds, "ImagePositionPatient", [-120.5, -98.25 + 0.5 * n, -310.0 + n])
                for n, ds in enumerate(s)],
     "slices tilted against their plane (gantry tilt)"),
    (lambda s: delattr(s[1], "PixelSpacing"),
     "images without position, orientation or pixel spacing"),
])
def test_stacks_that_are_not_one_even_volume_stay_dicom(tmp_path: Path, change,  # type: ignore[no-untyped-def]
                                                       reason: str) -> None:
    slices = ct_slices(SeriesSpec(PATIENT, instances=5))
    change(slices)
    assert _reason(save(slices, tmp_path / "odd")) == reason


def test_images_of_different_sizes_stay_dicom(tmp_path: Path) -> None:
    small = ct_slices(SeriesSpec(PATIENT, instances=3, rows=16, columns=16))
    large = ct_slices(SeriesSpec(PATIENT, instances=3))
    slices = [*small[:2], large[2]]
    assert _reason(save(slices, tmp_path / "sizes")) == "images of different sizes"


def test_undecodable_pixel_data_stays_dicom(tmp_path: Path) -> None:
    slices = ct_slices(SeriesSpec(PATIENT, instances=3))
    slices[1].PixelData = slices[1].PixelData[:100]
    paths = save(slices, tmp_path / "cut")
    assert _reason(paths).startswith("pixel data cannot be decoded")
    assert "Hopper" not in _reason(paths)


def test_per_slice_rescaling_is_applied(tmp_path: Path) -> None:
    slices = ct_slices(SeriesSpec(PATIENT, instances=3))
    slices[1].RescaleSlope, slices[1].RescaleIntercept = 2, -1000
    image = load(to_volume(save(slices, tmp_path / "rescale")).content)
    data = image.get_fdata()
    assert data[0, 0, 1] == slices[1].pixel_array[0, 0] * 2 - 1000
    assert data[0, 0, 0] == slices[0].pixel_array[0, 0] - 1024


def test_nibabel_reads_it_back_as_a_file(tmp_path: Path) -> None:
    paths = save(ct_slices(SeriesSpec(PATIENT, instances=3)), tmp_path / "ct")
    target = tmp_path / "series.nii.gz"
    target.write_bytes(to_volume(paths).content)
    assert nib.load(target).shape == (32, 32, 3)
    assert io.BytesIO(target.read_bytes()).read(2) == b"\x1f\x8b"  # gzip
