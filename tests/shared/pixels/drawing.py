"""Synthetic images with text drawn into their pixels at known places."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
FONT_SIZE = 22


def font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)


def draw_frame(rows: int, cols: int, texts: dict[tuple[int, int], str], seed: int = 0
               ) -> np.ndarray:
    """A dim speckled frame (an ultrasound's look) with bright text at (x, y)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 60, (rows, cols), dtype=np.uint8)
    picture = Image.fromarray(frame)
    pen = ImageDraw.Draw(picture)
    for (x, y), text in texts.items():
        pen.text((x, y), text, fill=255, font=font())
    return np.asarray(picture).copy()


@dataclass
class UsSpec:
    patient_id: str = "MRN-4711"
    name: str = "CURIE^MARIE"
    rows: int = 160
    cols: int = 320
    frames: int = 1
    rgb: bool = False
    planar: int = 0
    modality: str = "US"
    manufacturer: str = "ACME Medical"
    model: str = "SonoTest 1"
    texts: dict[tuple[int, int], str] = field(default_factory=dict)
    sop_uid: str = field(default_factory=generate_uid)


def frames_of(spec: UsSpec) -> np.ndarray:
    """(frames, rows, cols[, 3]) of the image, text on every frame."""
    out = []
    for index in range(spec.frames):
        grey = draw_frame(spec.rows, spec.cols, spec.texts, seed=index)
        if spec.rgb:
            grey = np.stack([grey, (grey // 2) + index, grey], axis=-1).astype(np.uint8)
        out.append(grey)
    return np.stack(out)


def us_image(spec: UsSpec) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = US_MULTIFRAME
    ds.file_meta.MediaStorageSOPInstanceUID = spec.sop_uid
    ds.SOPClassUID, ds.SOPInstanceUID = US_MULTIFRAME, spec.sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = spec.name, spec.patient_id, "19610412"
    ds.StudyDate, ds.StudyTime = "20240315", "101500"
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = (spec.modality, spec.manufacturer,
                                                              spec.model)
    ds.BurnedInAnnotation = "YES"
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = spec.rows, spec.cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = spec.frames
    array = frames_of(spec)
    if spec.rgb:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
        ds.PlanarConfiguration = spec.planar
        if spec.planar:
            array = array.transpose(0, 3, 1, 2)
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.ascontiguousarray(array).tobytes()
    return ds
