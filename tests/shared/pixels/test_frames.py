"""Black boxes on every frame, in every layout, and nothing else touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from relay_shared.pixels.frames import Unredactable, load_pixels, redact, write_pixels
from relay_shared.pixels.rules import Box
from tests.shared.pixels.drawing import UsSpec, frames_of, us_image

BOX = Box(0, 0, 200, 40)




def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _roundtrip(ds: Dataset, tmp_path: Path, boxes: list[Box]) -> tuple[Dataset, str]:
    source = _save(ds, tmp_path / "in.dcm")
    pixels = load_pixels(source)
    assert redact(pixels, boxes) == len(boxes)
    header = dcmread(source, stop_before_pixels=True)
    syntax = write_pixels(header, pixels, tmp_path / "out.dcm")
    return dcmread(tmp_path / "out.dcm"), str(syntax)


def _outside(array: np.ndarray, box: Box) -> np.ndarray:
    mask = np.ones(array.shape[1:3], bool)
    mask[box.y:box.y + box.height, box.x:box.x + box.width] = False
    return array[:, mask]


@pytest.mark.parametrize("planar", [0, 1])
def test_a_multiframe_rgb_cine_is_blacked_out_on_every_frame_and_nothing_else(
        tmp_path: Path, planar: int) -> None:
    spec = UsSpec(frames=5, rgb=True, planar=planar, texts={(4, 4): "CURIE MARIE"})
    out, syntax = _roundtrip(us_image(spec), tmp_path, [BOX])
    assert syntax == "1.2.840.10008.1.2.1" and out.PlanarConfiguration == planar
    after, before = out.pixel_array, frames_of(spec)
    assert after.shape == before.shape == (5, spec.rows, spec.cols, 3)
    assert not after[:, 0:40, 0:200].any()
    assert _outside(after, BOX).tobytes() == _outside(before, BOX).tobytes()


def test_monochrome1_is_blacked_out_with_its_highest_value(tmp_path: Path) -> None:
    ds = us_image(UsSpec(texts={(4, 4): "X"}))
    ds.PhotometricInterpretation = "MONOCHROME1"
    out, _ = _roundtrip(ds, tmp_path, [BOX])
    assert (out.pixel_array[0:40, 0:200] == out.pixel_array.max()).all()


def test_ybr_full_is_blacked_out_as_black_not_green(tmp_path: Path) -> None:
    ds = us_image(UsSpec(rgb=True, texts={(4, 4): "X"}))
    ds.PhotometricInterpretation = "YBR_FULL"
    out, _ = _roundtrip(ds, tmp_path, [BOX])
    raw = np.frombuffer(out.PixelData, np.uint8).reshape(out.Rows, out.Columns, 3)
    assert (raw[0:40, 0:200] == [0, 128, 128]).all()


def test_a_box_past_the_edge_is_clipped_and_one_outside_is_skipped(tmp_path: Path) -> None:
    ds = us_image(UsSpec(texts={(4, 4): "X"}))
    source = _save(ds, tmp_path / "in.dcm")
    pixels = load_pixels(source)
    assert redact(pixels, [Box(300, 150, 100, 100), Box(999, 0, 5, 5)]) == 1
    assert not pixels.array[0, 150:, 300:].any()


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_lossless_compressed_input_is_redacted_and_reencoded_the_same_way(
        tmp_path: Path, syntax: str) -> None:
    spec = UsSpec(frames=3, rgb=syntax == RLELossless, texts={(4, 4): "MRN-4711"})
    ds = us_image(spec)
    ds.compress(syntax, generate_instance_uid=False)
    out, written = _roundtrip(ds, tmp_path, [BOX])
    assert written == syntax == out.file_meta.TransferSyntaxUID
    after, before = out.pixel_array, frames_of(spec)
    assert not after[:, 0:40, 0:200].any()
    assert np.array_equal(_outside(after, BOX), _outside(before, BOX))  # lossless


def test_an_object_without_pixel_data_cannot_be_redacted(tmp_path: Path) -> None:
    ds = us_image(UsSpec())
    del ds.PixelData
    with pytest.raises(Unredactable, match="no pixel data"):
        load_pixels(_save(ds, tmp_path / "doc.dcm"))
