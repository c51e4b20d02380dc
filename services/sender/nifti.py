"""A series of DICOM slices as one compressed NIfTI-1 volume (nibabel), or the reason not.

Only a plain stack becomes a volume: single-frame greyscale images of one size and
one orientation, at distinct, evenly spaced positions along the normal of their
plane. Anything else (a single image, a localizer, mixed orientations, a tilted
gantry, several phases at the same positions) is better kept as DICOM than
resampled or guessed at.

DICOM places voxels in LPS patient coordinates, NIfTI in RAS: the affine built
here is the DICOM one with its first two rows negated.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset

from relay_shared.reasons import RelayError

GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
# Direction cosines agree to this much when two slices share an orientation.
ORIENTATION_TOLERANCE = 1e-4
# Slice gaps may differ by this fraction of their mean (rounding in DS strings).
SPACING_TOLERANCE = 0.01
# cos(0.5 degree): how far the slice step may lean from the plane's normal.
PARALLEL = float(np.cos(np.deg2rad(0.5)))
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class NotAVolume(RelayError):
    """The series cannot be one volume; the message is the reason, with no dataset value."""


@dataclass(frozen=True)
class Volume:
    content: bytes  # the .nii.gz file
    shape: tuple[int, ...]
    affine: np.ndarray  # voxel (column, row, slice) to RAS millimetres


def to_volume(paths: Sequence[Path]) -> Volume:
    """Read the series, check it is a plain stack, and encode it as .nii.gz."""
    datasets = [dcmread(path) for path in paths]
    stack = sorted_stack(datasets)
    data, slope, intercept = _voxels(stack)
    affine = LPS_TO_RAS @ lps_affine(stack)
    image = nib.Nifti1Image(data, affine)
    image.header.set_slope_inter(slope, intercept)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)  # scanner coordinates
    image.set_sform(affine, code=1)
    # mtime=0: the same series always gives the same bytes, so a resend is recognised.
    content = gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)
    return Volume(content, data.shape, affine)


def sorted_stack(datasets: Sequence[Dataset]) -> list[Dataset]:
    """The slices in order along their normal, or NotAVolume with the reason."""
    if len(datasets) < 2:
        raise NotAVolume("a single image")
    for ds in datasets:
        _check_image(ds)
    first = datasets[0]
    if any((ds.Rows, ds.Columns) != (first.Rows, first.Columns) for ds in datasets):
        raise NotAVolume("images of different sizes")
    orientation = _orientation(first)
    if any(not np.allclose(_orientation(ds), orientation, atol=ORIENTATION_TOLERANCE)
           for ds in datasets):
        raise NotAVolume("mixed orientations")
    normal = np.cross(orientation[0], orientation[1])
    stack = sorted(datasets, key=lambda ds: float(_position(ds) @ normal))
    _check_spacing(stack, normal)
    return stack


def _check_image(ds: Dataset) -> None:
    if "LOCALIZER" in [str(v).upper() for v in ds.get("ImageType", [])]:
        raise NotAVolume("a localizer")
    if any(ds.get(keyword) is None for keyword in GEOMETRY):
        raise NotAVolume("images without position, orientation or pixel spacing")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise NotAVolume("multi-frame images")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise NotAVolume("colour images")


def _check_spacing(stack: list[Dataset], normal: np.ndarray) -> None:
    steps = np.diff([_position(ds) for ds in stack], axis=0)
    gaps = steps @ normal
    if np.any(gaps <= 1e-3):
        raise NotAVolume("several images at one position (phases or repeats)")
    if np.ptp(gaps) > SPACING_TOLERANCE * float(np.mean(gaps)):
        raise NotAVolume("uneven slice spacing")
    along = gaps / np.linalg.norm(steps, axis=1)
    if np.any(along < PARALLEL):
        raise NotAVolume("slices tilted against their plane (gantry tilt)")


def lps_affine(stack: Sequence[Dataset]) -> np.ndarray:
    """Voxel (column, row, slice) to LPS millimetres, from the first and last slice."""
    row_cosine, column_cosine = _orientation(stack[0])
    row_spacing, column_spacing = (float(v) for v in stack[0].PixelSpacing)
    first, last = _position(stack[0]), _position(stack[-1])
    affine = np.eye(4)
    affine[:3, 0] = row_cosine * column_spacing  # along a row: the column index grows
    affine[:3, 1] = column_cosine * row_spacing
    affine[:3, 2] = (last - first) / (len(stack) - 1)
    affine[:3, 3] = first
    return affine


def _voxels(stack: list[Dataset]) -> tuple[np.ndarray, float, float]:
    """The (column, row, slice) array and one slope and intercept for the whole volume."""
    try:
        slices = [ds.pixel_array for ds in stack]
    except Exception as exc:  # any codec failure: the reason, never the parser's text
        raise NotAVolume(f"pixel data cannot be decoded ({type(exc).__name__})") from None
    data = np.stack([pixels.T for pixels in slices], axis=-1)
    rescale = {(float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0))
               for ds in stack}
    if len(rescale) == 1:
        slope, intercept = rescale.pop()
        return data, slope, intercept
    # Per-slice rescaling has no NIfTI equivalent: apply it, store real values.
    real = np.stack([pixels.T * float(ds.get("RescaleSlope", 1) or 1)
                     + float(ds.get("RescaleIntercept", 0) or 0)
                     for pixels, ds in zip(slices, stack, strict=True)], axis=-1)
    return real.astype(np.float32), 1.0, 0.0


def _orientation(ds: Dataset) -> np.ndarray:
    return np.asarray([float(v) for v in ds.ImageOrientationPatient]).reshape(2, 3)


def _position(ds: Dataset) -> np.ndarray:
    return np.asarray([float(v) for v in ds.ImagePositionPatient])
