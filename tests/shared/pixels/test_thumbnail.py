"""The thumbnail a reviewer sees of a held image: windowed as a viewer would show it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PilImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from relay_shared.pixels.thumbnail import NoThumbnail, render_thumbnail

# Stored values of a CT slice in four bands; with the intercept they are -1024, 0, 40
# and 1000 Hounsfield units: air, water, soft tissue, bone.
BANDS_HU = (-1024, 0, 40, 1000)


def ct_slice(rows: int = 64, cols: int = 64, window: tuple[float, float] | None = (40, 400),
             modality: str = "CT") -> Dataset:
    stored = np.zeros((rows, cols), np.int16)
    for n, hu in enumerate(BANDS_HU):
        stored[:, n * cols // 4:(n + 1) * cols // 4] = hu + 1024
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = stored.astype(np.uint16).tobytes()
    return ds


def write_ct_slice(path: Path, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ct_slice(**options).save_as(path, enforce_file_format=True)  # type: ignore[arg-type]
    return path


def grey_bands(png: bytes, bands: int = 4) -> list[int]:
    picture = np.asarray(PilImage.open(io.BytesIO(png)).convert("L"))
    width = picture.shape[1]
    row = picture[picture.shape[0] // 2]
    return [int(row[n * width // bands + width // (2 * bands)]) for n in range(bands)]


def test_ct_is_shown_through_its_own_window() -> None:
    # Window 40/400: -160 HU and below black, 240 HU and above white, 40 HU mid-grey.
    air, water, tissue, bone = grey_bands(render_thumbnail(ct_slice()))
    assert air == 0 and bone == 255
    assert 100 <= water <= 110  # (0 - -160) / 400 of the way
    assert 125 <= tissue <= 130


def test_ct_without_a_window_gets_a_soft_tissue_window() -> None:
    assert grey_bands(render_thumbnail(ct_slice(window=None))) == grey_bands(
        render_thumbnail(ct_slice()))


def test_an_emptied_window_is_no_window() -> None:
    ds = ct_slice()
    ds.WindowCenter, ds.WindowWidth = "", ""
    assert grey_bands(render_thumbnail(ds)) == grey_bands(render_thumbnail(ct_slice()))


def test_a_bone_window_in_the_file_is_used() -> None:
    air, water, tissue, bone = grey_bands(render_thumbnail(ct_slice(window=(400, 1800))))
    assert air == 0 and bone < 255 and water < tissue < bone


def test_mr_without_a_window_is_stretched_over_its_own_values() -> None:
    air, water, tissue, bone = grey_bands(render_thumbnail(ct_slice(window=None,
                                                                    modality="MR")))
    assert (air, bone) == (0, 255) and 0 < water < tissue < bone


def test_monochrome1_is_drawn_inverted() -> None:
    ds = ct_slice()
    ds.PhotometricInterpretation = "MONOCHROME1"
    assert grey_bands(render_thumbnail(ds))[::3] == [255, 0]


def test_the_thumbnail_is_small_and_keeps_the_shape() -> None:
    picture = PilImage.open(io.BytesIO(render_thumbnail(ct_slice(rows=512, cols=1024))))
    assert picture.size == (320, 160)


def test_a_multiframe_image_shows_its_middle_frame() -> None:
    ds = ct_slice(rows=8, cols=8, window=None)
    frames = np.stack([np.full((8, 8), value, np.uint16) for value in (0, 1024 + 40, 4095)])
    ds.NumberOfFrames, ds.PixelData = 3, frames.tobytes()
    assert set(np.asarray(PilImage.open(io.BytesIO(render_thumbnail(ds)))).ravel()) == {128}


def test_a_colour_image_stays_in_colour() -> None:
    ds = ct_slice(rows=4, cols=4, window=None, modality="US")
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    del ds.RescaleIntercept, ds.RescaleSlope
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[0, 0] = 200, (0, 0, 0)
    ds.PixelData = rgb.tobytes()
    picture = PilImage.open(io.BytesIO(render_thumbnail(ds)))
    assert picture.mode == "RGB" and picture.getpixel((3, 3)) == (255, 0, 0)


def test_no_pixels_no_thumbnail() -> None:
    ds = ct_slice()
    del ds.PixelData
    with pytest.raises(NoThumbnail, match="no pixel data"):
        render_thumbnail(ds)
