"""Small pictures of de-identified frames for the reviewer, rendered here from the
de-identified files (never from the originals), so the browser needs no DICOM viewer.

CT and MR are shown through a window: the file's own first window when it has one,
else soft tissue for CT (centre 40, width 400 HU) and the 1st to 99th percentile
of the frame for MR. Other grey images are scaled over their own range; colour is
shown as it is, in RGB.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, convert_color_space, pixel_array

from relay_shared.reasons import RelayError

SIZE = 256
CT_WINDOW = (40.0, 400.0)


class NotAPicture(RelayError, ValueError):
    """The file holds no frame that can be drawn (no pixel data, an unknown codec)."""


def frame_count(path: Path) -> int:
    ds = dcmread(path, stop_before_pixels=True)
    if "Rows" not in ds:
        return 0
    return int(ds.get("NumberOfFrames", 1) or 1)


def thumbnail(path: Path, frame: int, size: int = SIZE) -> bytes:
    """A PNG of frame `frame` (from 0), at most `size` pixels on its longer side."""
    header = dcmread(path, stop_before_pixels=True)
    frames = int(header.get("NumberOfFrames", 1) or 1) if "Rows" in header else 0
    if not 0 <= frame < frames:
        raise NotAPicture(f"frame {frame} is not among the {frames} frame(s) of the image")
    try:
        array = pixel_array(str(path), index=frame)
    except Exception as exc:  # no decoder for it, or bad data
        raise NotAPicture(f"its pixel data cannot be decoded ({type(exc).__name__})") from None
    picture = PILImage.fromarray(_as_8bit(array, header))
    picture.thumbnail((size, size))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def _as_8bit(array: np.ndarray, ds: Dataset) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if array.ndim == 3:  # colour, decoded in its stored colour space
        if photometric.startswith("YBR"):
            array = convert_color_space(array, photometric, "RGB")
        return _stretch(array.astype(np.float32), 0.0, float(array.max() or 1))
    values = apply_modality_lut(array, ds).astype(np.float32)
    low, high = _window(values, ds)
    grey = _stretch(values, low, high)
    return 255 - grey if photometric == "MONOCHROME1" else grey


def _window(values: np.ndarray, ds: Dataset) -> tuple[float, float]:
    modality = str(ds.get("Modality", "")).upper()
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if modality in ("CT", "MR") and centre is not None and width and width > 0:
        return centre - width / 2, centre + width / 2
    if modality == "CT":
        return CT_WINDOW[0] - CT_WINDOW[1] / 2, CT_WINDOW[0] + CT_WINDOW[1] / 2
    if modality == "MR":
        low, high = np.percentile(values, [1, 99])
        return float(low), float(high)
    return float(values.min()), float(values.max())


def _first(value: object) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return None if value is None or value == "" else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return (np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.uint8)
