"""A small picture of one image for a person to look at before releasing it.

Drawn from the de-identified file only (the caller reads it), as a PNG a
browser shows. CT and MR are windowed the way a viewer opens them: the
file's own window first, else a soft-tissue window for CT (Hounsfield units)
and the 1st to 99th percentile for MR, whose values have no fixed scale.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PilImage
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, pixel_array

from relay_shared.reasons import RelayError

THUMBNAIL_PIXELS = 320
CT_DEFAULT_WINDOW = (40.0, 400.0)  # centre, width: soft tissue
PERCENTILES = (1.0, 99.0)


class NoThumbnail(RelayError, ValueError):
    """The file holds no picture that can be drawn; the message says why, without values."""


def render_thumbnail(ds: Dataset, size: int = THUMBNAIL_PIXELS) -> bytes:
    """PNG bytes of the middle frame of `ds`, at most `size` pixels on its longer side."""
    if "PixelData" not in ds:
        raise NoThumbnail("the file holds no pixel data")
    try:
        frames = pixel_array(ds)  # colour is converted to RGB
    except Exception as exc:  # no decoder for its transfer syntax, or damaged data
        raise NoThumbnail(f"its pixel data cannot be decoded: {type(exc).__name__}") from None
    frame = _middle_frame(frames, ds)
    if frame.ndim == 3:
        picture = PilImage.fromarray(_to_bytes(frame, *_full_range(frame)), "RGB")
    else:
        picture = PilImage.fromarray(_grey(frame, ds), "L")
    picture.thumbnail((size, size), PilImage.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _middle_frame(frames: np.ndarray, ds: Dataset) -> np.ndarray:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    return frames[count // 2] if count > 1 else frames


def _grey(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    values = apply_modality_lut(frame, ds).astype(np.float64)
    low, high = window_of(values, ds)
    grey = _to_bytes(values, low, high)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        grey = 255 - grey  # its lowest value is white
    return grey


def window_of(values: np.ndarray, ds: Dataset) -> tuple[float, float]:
    """The lowest and highest value shown, black to white."""
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if centre is not None and width is not None and width >= 1:
        return centre - width / 2, centre + width / 2
    modality = str(ds.get("Modality", "")).upper()
    if modality == "CT":
        centre, width = CT_DEFAULT_WINDOW
        return centre - width / 2, centre + width / 2
    if modality == "MR":
        low, high = np.percentile(values, PERCENTILES)
        return float(low), float(high)
    return _full_range(values)


def _first(value: object) -> float | None:
    """Window Center and Width may hold several views (VM 1-n): the first is the default.
    An empty one (a profile may keep the element and blank it) is no window."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    return float(value)  # type: ignore[arg-type]


def _full_range(values: np.ndarray) -> tuple[float, float]:
    return float(values.min()), float(values.max())


def _to_bytes(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low if high > low else 1.0
    scaled = (values.astype(np.float64) - low) / span
    return (np.clip(scaled, 0.0, 1.0) * 255).round().astype(np.uint8)
