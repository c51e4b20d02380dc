"""Synthetic DICOM series with identifying values planted where real ones hide."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


@dataclass
class Patient:
    patient_id: str
    name: str
    birth_date: str = "19610412"
    accession: str = "ACC20240001"
    institution: str = "Saint Elsewhere Hospital"
    physician: str = "House^Gregory"

    def identifying_values(self) -> list[str]:
        return [self.patient_id, self.name, self.name.replace("^", " "), self.accession,
                self.institution, self.physician]


@dataclass
class SeriesSpec:
    patient: Patient
    study_uid: str = field(default_factory=generate_uid)
    series_uid: str = field(default_factory=generate_uid)
    frame_uid: str = field(default_factory=generate_uid)
    instances: int = 20
    rows: int = 32
    columns: int = 32
    modality: str = "CT"
    study_date: str = "20240315"
    sop_uids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sop_uids:
            self.sop_uids = [generate_uid() for _ in range(self.instances)]

    def original_uids(self) -> list[str]:
        return [self.study_uid, self.series_uid, self.frame_uid, *self.sop_uids]


def make_instance(spec: SeriesSpec, index: int) -> Dataset:
    p = spec.patient
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = spec.sop_uids[index]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = spec.sop_uids[index]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.study_uid, spec.series_uid
    ds.FrameOfReferenceUID = spec.frame_uid
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = p.name, p.patient_id, p.birth_date
    ds.PatientSex, ds.PatientAge = "F", "063Y"
    ds.AccessionNumber, ds.InstitutionName = p.accession, p.institution
    ds.ReferringPhysicianName = p.physician
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = spec.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, index + 1
    ds.Modality = spec.modality
    ds.StudyDescription = f"CT CHEST for {p.name.split('^')[0]}"
    ds.ImageComments = f"patient {p.patient_id} tolerated the scan"
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID = p.patient_id, "HOSPITAL"
    ds.OtherPatientIDsSequence = Sequence([other])
    if index:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CTImageStorage, spec.sop_uids[0]
        ds.ReferencedImageSequence = Sequence([ref])
    block = ds.private_block(0x0011, "ACME Corp", create=True)
    block.add_new(0x01, "LO", p.name)
    block.add_new(0x02, "LO", p.patient_id)
    ds.ImagePositionPatient = [0, 0, float(index)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.0
    ds.Rows, ds.Columns = spec.rows, spec.columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    rng = np.random.default_rng(index)
    ds.PixelData = rng.integers(0, 4000, (spec.rows, spec.columns), dtype=np.uint16).tobytes()
    return ds


def write_series(spec: SeriesSpec, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(spec.instances):
        path = folder / f"IM{index:05d}.dcm"
        make_instance(spec, index).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def deliver(source: Path, incoming: Path, name: str | None = None) -> Path:
    """Put a finished series folder into incoming the way a sender must: write, then rename."""
    import shutil
    import uuid

    incoming.mkdir(parents=True, exist_ok=True)
    final = incoming / (name or f"{source.name}-{uuid.uuid4().hex[:6]}")
    partial = final.with_name(final.name + ".tmp" + uuid.uuid4().hex[:6])
    shutil.copytree(source, partial)
    partial.rename(final)
    return final
