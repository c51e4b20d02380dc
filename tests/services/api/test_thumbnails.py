"""Frames drawn for the reviewer: CT and MR through a window, MONOCHROME1 the right way
round, colour as it is."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from relay_api.thumbnails import NotAPicture, frame_count, thumbnail


def _write(path: Path, pixels: np.ndarray, modality: str, photometric: str = "MONOCHROME2",
           **extra: object) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = modality
    frames = pixels.shape[0] if pixels.ndim == 3 + (photometric == "RGB") else 1
    shape = pixels.shape[-3:-1] if photometric == "RGB" else pixels.shape[-2:]
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _grey(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("L"))


def test_ct_is_shown_in_a_soft_tissue_window_without_one_of_its_own(tmp_path: Path) -> None:
    hounsfield = np.array([[-1000, 40, 1000, 240]], np.int16)
    path = _write(tmp_path / "ct.dcm", hounsfield + 1024, "CT", RescaleIntercept=-1024,
                  RescaleSlope=1)
    grey = _grey(thumbnail(path, 0))
    assert grey[0, 0] == 0 and grey[0, 2] == 255 and grey[0, 3] == 255
    assert 125 <= grey[0, 1] <= 129  # the centre of the window is mid grey


def test_a_window_in_the_file_is_the_one_used(tmp_path: Path) -> None:
    hounsfield = np.array([[-1000, 40, 1000, 240]], np.int16)
    path = _write(tmp_path / "ct.dcm", hounsfield, "CT", WindowCenter=500, WindowWidth=1000)
    grey = _grey(thumbnail(path, 0))
    assert grey[0, 0] == 0 and grey[0, 2] == 255
    assert 60 <= grey[0, 3] <= 62  # 240 HU is 0.24 of the way up a 0..1000 window


def test_mr_is_stretched_over_its_own_values_and_monochrome1_inverted(tmp_path: Path) -> None:
    values = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (4, 1))
    mr = _grey(thumbnail(_write(tmp_path / "mr.dcm", values, "MR"), 0))
    assert mr[0, 0] == 0 and mr[0, -1] == 255 and mr[0, 50] > 100
    inverted = _grey(thumbnail(_write(tmp_path / "cr.dcm", values, "CR", "MONOCHROME1"), 0))
    assert inverted[0, 0] == 255 and inverted[0, -1] == 0


def test_every_frame_of_a_cine_and_colour_as_it_is(tmp_path: Path) -> None:
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    frames[2, :, :, 0] = 200  # the third frame is red
    path = _write(tmp_path / "us.dcm", frames, "US", "RGB")
    assert frame_count(path) == 3
    third = np.asarray(PILImage.open(io.BytesIO(thumbnail(path, 2))))
    assert third[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(NotAPicture, match="not among the 3 frame"):
        thumbnail(path, 3)


def test_a_large_frame_is_made_small(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.dcm", np.zeros((600, 300), np.uint16), "CT")
    assert PILImage.open(io.BytesIO(thumbnail(path, 0))).size == (128, 256)
