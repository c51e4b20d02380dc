"""Pixel data in and out: read an image's frames, black out boxes, write the
changed image under its de-identified header.

Native little-endian pixel data is worked on as the bytes it is stored as
(a numpy view in the stored layout, planar configuration included), so every
byte outside a box is written back unchanged. Anything else (compressed,
big endian, deflated, YBR_FULL_422) is decoded by pydicom in its stored
colour space and encoded again: to the same transfer syntax where pydicom can
encode it, else to a lossless one; never lossily.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from .rules import Box

NATIVE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
# Where the source's own syntax cannot be written back, the closest lossless one.
REENCODE = {
    RLELossless: RLELossless,
    JPEGLSLossless: JPEGLSLossless,
    JPEGLSNearLossless: JPEGLSLossless,
    JPEG2000Lossless: JPEG2000Lossless,
    JPEG2000: JPEG2000Lossless,
}
LOSSY = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000,
                   HTJ2K})
PIXEL_GROUP = ("SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows",
               "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
               "NumberOfFrames", "LossyImageCompression")


class Unredactable(ValueError):
    """The pixel data is of a kind that cannot be changed safely here."""


@dataclass
class Pixels:
    """Frames as stored: (frames, rows, cols), (frames, rows, cols, samples), or for
    planar configuration 1, (frames, samples, rows, cols). `attrs` holds the
    Image Pixel attributes that describe `array`."""

    array: np.ndarray
    attrs: Dataset
    syntax: UID
    native: bool  # `array` views the stored bytes: write them back as they were
    tail: bytes = b""  # the padding byte of odd-length pixel data

    @property
    def planar(self) -> bool:
        return self.array.ndim == 4 and int(self.attrs.get("PlanarConfiguration", 0)) == 1 \
            and self.native

    @property
    def photometric(self) -> str:
        return str(self.attrs.PhotometricInterpretation).upper()

    def display(self) -> np.ndarray:
        """(frames, rows, cols) of brightness from 0 to 1, for reading text off. Eight
        bits are scaled by their full range, not the image's: a dim, redacted frame
        must not have its speckle stretched into what looks like text."""
        arr = self.array.transpose(0, 2, 3, 1) if self.planar else self.array
        if arr.ndim == 4:
            if self.photometric.startswith("YBR"):
                arr = arr[..., 0]
            else:
                arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                                 np.float32)
        arr = arr.astype(np.float32)
        bits = int(self.attrs.get("BitsStored", 8))
        low = float(arr.min()) if int(self.attrs.get("PixelRepresentation", 0)) else 0.0
        high = float(2 ** bits - 1) if bits <= 8 else float(arr.max())
        scaled = (arr - low) / (high - low) if high > low else arr * 0
        return 1 - scaled if self.photometric == "MONOCHROME1" else scaled


def load_pixels(source: Path) -> Pixels:
    ds = dcmread(source)
    if "PixelData" not in ds:
        raise Unredactable("no pixel data to check (an encapsulated document or a "
                           "non-image object)")
    if int(ds.get("BitsAllocated", 0)) not in (8, 16, 32):
        raise Unredactable(f"BitsAllocated {ds.get('BitsAllocated')} is not handled")
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    attrs = Dataset()
    for keyword in PIXEL_GROUP:
        if keyword in ds:
            setattr(attrs, keyword, ds.data_element(keyword).value)  # type: ignore[union-attr]
    if syntax in NATIVE and str(ds.PhotometricInterpretation) != "YBR_FULL_422":
        array, tail = _native_view(ds)
        return Pixels(array, attrs, syntax, True, tail)
    try:
        array = pixel_array(ds, ds_out=attrs, raw=True)
    except Exception as exc:  # no decoder for it (video, an unknown codec) or bad data
        raise Unredactable(f"pixel data in {syntax.name} cannot be decoded: "
                           f"{type(exc).__name__}") from None
    if int(ds.get("NumberOfFrames", 1) or 1) <= 1:
        array = array[np.newaxis]
    if syntax in LOSSY:  # decoded from lossy data: once lossy, always marked so
        attrs.LossyImageCompression = "01"
    return Pixels(array, attrs, syntax, False)


def _native_view(ds: Dataset) -> tuple[np.ndarray, bytes]:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    rows, cols, samples = int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel)
    kind = "i" if int(ds.get("PixelRepresentation", 0)) else "u"
    dtype = np.dtype(f"<{kind}{int(ds.BitsAllocated) // 8}")
    count = frames * rows * cols * samples
    data = bytes(ds.PixelData)
    if len(data) < count * dtype.itemsize:
        raise Unredactable("the pixel data is shorter than its dimensions say")
    array = np.frombuffer(data, dtype, count).copy()
    if samples == 1:
        shape: tuple[int, ...] = (frames, rows, cols)
    elif int(ds.get("PlanarConfiguration", 0)) == 1:
        shape = (frames, samples, rows, cols)
    else:
        shape = (frames, rows, cols, samples)
    return array.reshape(shape), data[count * dtype.itemsize:]


def redact(pixels: Pixels, boxes: list[Box]) -> int:
    """Black out `boxes` on every frame; returns how many boxes fell on the image."""
    arr = pixels.array
    rows, cols = int(pixels.attrs.Rows), int(pixels.attrs.Columns)
    fill = _black(pixels)
    done = 0
    for box in boxes:
        y0, y1 = min(box.y, rows), min(box.y + box.height, rows)
        x0, x1 = min(box.x, cols), min(box.x + box.width, cols)
        if y0 >= y1 or x0 >= x1:
            continue
        done += 1
        if pixels.planar:
            for sample, value in enumerate(fill):
                arr[:, sample, y0:y1, x0:x1] = value
        else:
            arr[:, y0:y1, x0:x1] = fill if arr.ndim == 4 else fill[0]
    return done


def _black(pixels: Pixels) -> list[int]:
    """The stored value(s) that display as black in this colour space."""
    samples = int(pixels.attrs.get("SamplesPerPixel", 1))
    if pixels.photometric.startswith("YBR"):
        middle = 1 << (int(pixels.attrs.BitsStored) - 1)
        return [0, middle, middle][:samples]
    if samples > 1:
        return [0] * samples
    arr = pixels.array
    return [int(arr.max()) if pixels.photometric == "MONOCHROME1" else int(arr.min())]


def output_syntax(pixels: Pixels) -> UID:
    if pixels.native:
        return pixels.syntax
    return REENCODE.get(pixels.syntax, ExplicitVRLittleEndian)


def write_pixels(header: Dataset, pixels: Pixels, target: Path) -> UID:
    """Write `header` (de-identified, without pixel data) with `pixels`, atomically.
    Returns the transfer syntax written."""
    for keyword in PIXEL_GROUP:
        if keyword in pixels.attrs:
            setattr(header, keyword, pixels.attrs.data_element(keyword).value)  # type: ignore[union-attr]
    if not pixels.native and pixels.array.ndim == 4:
        header.PlanarConfiguration = 0
    header.PixelData = pixels.array.tobytes() + pixels.tail
    header["PixelData"].VR = "OB" if int(pixels.attrs.BitsAllocated) == 8 else "OW"
    syntax = output_syntax(pixels)
    header.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if not pixels.native \
        else pixels.syntax
    if syntax.is_encapsulated:
        syntax = _encode(header, pixels, syntax)
    part = target.with_name(target.name + ".part")
    try:
        header.save_as(part, enforce_file_format=True)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return syntax


def _encode(header: Dataset, pixels: Pixels, syntax: UID) -> UID:
    """Encode to `syntax`, or to RLE Lossless, or leave native: lossless whichever."""
    array = pixels.array if int(pixels.attrs.get("NumberOfFrames", 1) or 1) > 1 \
        else pixels.array[0]
    for candidate in dict.fromkeys((syntax, RLELossless)):
        try:
            header.compress(candidate, array, generate_instance_uid=False)
            return candidate
        except (RuntimeError, ValueError, NotImplementedError):
            continue
    return ExplicitVRLittleEndian
