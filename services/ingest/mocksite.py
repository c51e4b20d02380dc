"""A mock clinical site: synthetic studies on a schedule, pushed to a relay, for demos
and load tests.

Every value is made up here from a seeded random generator: names from short
lists of invented ones, ids and accession numbers of digits, pixel data of noise.
The identifying values go where real ones hide (the patient module, but also
referring and performing physicians, the institution, free-text comments and
descriptions, request attributes, other patient ids, a private block), so that a
run also shows the de-identification at work. Studies go out by C-STORE to the
relay's SCP, or as finished folders into its incoming folder.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt

from relay_shared.dicomnet import tune_connection

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1", "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "PT": "1.2.840.10008.5.1.4.1.1.128", "US": "1.2.840.10008.5.1.4.1.1.6.1",
}
BODY_PARTS = {"CT": ["CHEST", "ABDOMEN", "HEAD"], "MR": ["BRAIN", "KNEE", "SPINE"],
              "CR": ["CHEST", "HAND"], "DX": ["CHEST", "PELVIS"], "PT": ["WHOLEBODY"],
              "US": ["ABDOMEN"]}
GIVEN = ["Ardent", "Belvane", "Corvin", "Dellis", "Emrys", "Faelan", "Gwenora", "Halvard"]
FAMILY = ["Quillfeather", "Marrowdale", "Thistlewick", "Ambercombe", "Ravenholt", "Oakhurst"]
SITES = ["Northvale General Hospital", "Saint Brannock Clinic", "Eastmere Imaging Centre"]


@dataclass(frozen=True)
class Profile:
    modalities: tuple[str, ...] = ("CT", "MR", "CR")
    studies_per_hour: float = 60.0
    series_per_study: tuple[int, int] = (1, 3)
    instances_per_series: tuple[int, int] = (5, 20)
    size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class Person:
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass
class Figures:
    studies: int = 0
    series: int = 0
    instances: int = 0
    bytes: int = 0
    refused: int = 0
    failed_studies: int = 0
    elapsed: float = 0.0
    study_seconds: list[float] = field(default_factory=list)

    def lines(self, asked_per_hour: float) -> list[str]:
        hours = self.elapsed / 3600 or 1e-9
        median = statistics.median(self.study_seconds) if self.study_seconds else 0.0
        return [f"studies: {self.studies}", f"series: {self.series}",
                f"instances: {self.instances}", f"pixel megabytes: {self.bytes / 1e6:.1f}",
                f"refused instances: {self.refused}", f"failed studies: {self.failed_studies}",
                f"elapsed seconds: {self.elapsed:.1f}",
                f"studies per hour: asked {asked_per_hour:g}, sent {self.studies / hours:.1f}",
                f"instances per second: {self.instances / max(self.elapsed, 1e-9):.1f}",
                f"seconds per study: median {median:.2f}, "
                f"max {max(self.study_seconds, default=0.0):.2f}"]


class StudyMaker:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._rng = random.Random(profile.seed)
        self._people = [self._person() for _ in range(max(4, int(profile.studies_per_hour)))]

    def _person(self) -> Person:
        rng = self._rng
        return Person(f"{rng.randrange(10**7, 10**8)}",
                      f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}",
                      f"{rng.randrange(1930, 2015)}{rng.randrange(1, 13):02d}"
                      f"{rng.randrange(1, 29):02d}", rng.choice("FM"))

    def study(self) -> list[list[Dataset]]:
        """One study of one person: a list of series, each a list of instances."""
        rng, profile = self._rng, self.profile
        modality = rng.choice(profile.modalities)
        common = _study_module(self._rng.choice(self._people), modality, rng)
        return [self._series(common, modality, number)
                for number in range(1, rng.randint(*profile.series_per_study) + 1)]

    def _series(self, common: Dataset, modality: str, number: int) -> list[Dataset]:
        series_uid, frame_uid = generate_uid(), generate_uid()
        count = self._rng.randint(*self.profile.instances_per_series)
        sop_uids = [str(generate_uid()) for _ in range(count)]
        return [_instance(common, modality, number, series_uid, frame_uid, sop_uids, index,
                          self.profile.size) for index in range(count)]


def _study_module(person: Person, modality: str, rng: random.Random) -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID = person.name, person.patient_id
    ds.PatientBirthDate, ds.PatientSex = person.birth_date, person.sex
    ds.PatientAddress = f"{rng.randrange(1, 200)} {rng.choice(FAMILY)} Lane"
    ds.PatientTelephoneNumbers = f"555-{rng.randrange(1000, 9999)}"
    ds.StudyInstanceUID, ds.StudyID = generate_uid(), f"{rng.randrange(1, 10**6)}"
    ds.AccessionNumber = f"A{rng.randrange(10**8, 10**9)}"
    ds.StudyDate = f"2025{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    ds.StudyTime = f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}00"
    ds.InstitutionName = rng.choice(SITES)
    ds.InstitutionAddress = f"{rng.randrange(1, 99)} Harbour Road, Northvale"
    ds.ReferringPhysicianName = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}^^Dr"
    ds.PerformingPhysicianName = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
    ds.OperatorsName = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
    ds.StationName = f"{modality}SCANNER{rng.randrange(1, 9)}"
    body_part = rng.choice(BODY_PARTS[modality])
    ds.BodyPartExamined = body_part
    ds.StudyDescription = f"{modality} {body_part} {person.name.split('^')[0]}"
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID = f"H{person.patient_id[::-1]}", "NORTHVALE"
    ds.OtherPatientIDsSequence = Sequence([other])
    request = Dataset()
    request.AccessionNumber = ds.AccessionNumber
    request.RequestedProcedureID = f"RP{rng.randrange(10**5, 10**6)}"
    request.ScheduledProcedureStepID = f"SPS{rng.randrange(10**5, 10**6)}"
    ds.RequestAttributesSequence = Sequence([request])
    return ds


def _instance(common: Dataset, modality: str, number: int, series_uid: str, frame_uid: str,
              sop_uids: list[str], index: int, size: int) -> Dataset:
    ds = Dataset()
    ds.update(common)
    sop_class = UID(SOP_CLASSES[modality])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uids[index])
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uids[index]
    ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, number, index + 1
    ds.SeriesDate = ds.ContentDate = common.StudyDate
    ds.SeriesTime = ds.ContentTime = common.StudyTime
    ds.SeriesDescription = f"{modality} series {number}"
    ds.ImageComments = f"patient {common.PatientID} tolerated the examination"
    if index:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_uids[0]
        ds.ReferencedImageSequence = Sequence([ref])
    block = ds.private_block(0x0029, "MOCKSITE 1.0", create=True)
    block.add_new(0x10, "LO", str(common.PatientName))
    block.add_new(0x11, "LO", str(common.PatientID))
    _pixels(ds, index, size)
    return ds


def _pixels(ds: Dataset, index: int, size: int) -> None:
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(index)], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.8, 0.8], 1.0
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    noise = np.random.default_rng(index).integers(0, 4096, (size, size), dtype=np.uint16)
    ds.PixelData = noise.tobytes()


Push = Callable[[list[list[Dataset]]], tuple[int, int]]


def push_by_cstore(host: str, port: int, called_ae: str, calling_ae: str = "MOCKSITE",
                   timeout: float = 30.0) -> Push:
    """One association per study; returns (instances stored, instances refused)."""
    def push(study: list[list[Dataset]]) -> tuple[int, int]:
        ae = AE(ae_title=calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        for sop_class in {str(s[0].SOPClassUID) for s in study}:
            ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
        assoc = ae.associate(host, port, ae_title=called_ae,
                             evt_handlers=[(evt.EVT_CONN_OPEN, tune_connection)])
        if not assoc.is_established:
            raise ConnectionError(f"{called_ae} at {host}:{port} refused the association")
        stored = refused = 0
        try:
            for ds in (ds for series in study for ds in series):
                status = assoc.send_c_store(ds)
                ok = "Status" in status and int(status.Status) in (0x0000, 0xB000, 0xB007)
                stored, refused = stored + ok, refused + (not ok)
        finally:
            assoc.release()
        return stored, refused
    return push


def push_as_folder(incoming: Path) -> Push:
    """Each study written as NAME.tmpXXXX, then renamed: ingest takes it whole."""
    def push(study: list[list[Dataset]]) -> tuple[int, int]:
        name = f"mocksite-{uuid.uuid4().hex[:12]}"
        partial = incoming / f"{name}.tmp{uuid.uuid4().hex[:8]}"
        partial.mkdir(parents=True)
        count = 0
        try:
            for ds in (ds for series in study for ds in series):
                ds.save_as(partial / f"{count:05d}.dcm", enforce_file_format=True)
                count += 1
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        os.rename(partial, incoming / name)
        return count, 0
    return push


def schedule(studies_per_hour: float, duration: float) -> Iterator[float]:
    """Seconds from the start at which each study is due, evenly spaced."""
    interval = 3600.0 / studies_per_hour
    due = 0.0
    while due < duration:
        yield due
        due += interval


def run(profile: Profile, push: Push, duration: float,
        sleep: Callable[[float], None] = time.sleep) -> Figures:
    maker, figures = StudyMaker(profile), Figures()
    start = time.monotonic()
    for due in schedule(profile.studies_per_hour, duration):
        sleep(max(0.0, due - (time.monotonic() - start)))
        study = maker.study()
        began = time.monotonic()
        try:
            stored, refused = push(study)
        except (OSError, ConnectionError):
            figures.failed_studies += 1
            continue
        figures.study_seconds.append(time.monotonic() - began)
        figures.studies += 1
        figures.series += len(study)
        figures.instances += stored
        figures.refused += refused
        figures.bytes += sum(len(ds.PixelData) for series in study for ds in series)
    # The window is the rate's denominator: the run lasts it even after its last study.
    sleep(max(0.0, duration - (time.monotonic() - start)))
    figures.elapsed = time.monotonic() - start
    return figures
