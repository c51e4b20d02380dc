"""Names in the world's scripts, planted in every free-text place the profile
keeps cleaned and in every SR item that holds text: the engine leaves none of
them, and the guard, judging the output on its own, finds nothing left."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ComprehensiveSRStorage, ExplicitVRLittleEndian, generate_uid

from relay_shared.deid import DeidConfig, deidentify, find_leaks, identifying_values
from relay_shared.dicom.header import parse_file
from relay_shared.guard import SeriesGuard
from relay_shared.guard.text import fold
from tests.support.multilingual import PEOPLE, Person, sentence

from .planting import PSEUDO

CLEANED = DeidConfig(options=frozenset({"cleanDescOpt", "cleanStructContOpt"}))


def _code(meaning: str, value: str = "121106", scheme: str = "DCM") -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _item(value_type: str, **values: object) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", value_type
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


# Where a name is written: each place and how to read it back from an output.
PLACES = {
    "StudyDescription": lambda ds: ds.StudyDescription,
    "ImageComments": lambda ds: ds.ImageComments,
    "AdditionalPatientHistory": lambda ds: ds.AdditionalPatientHistory,
    "PatientComments": lambda ds: ds.PatientComments,
    "ProcedureCode meaning": lambda ds: ds.ProcedureCodeSequence[0].CodeMeaning,
    "SR document title meaning": lambda ds: ds.ConceptNameCodeSequence[0].CodeMeaning,
    "SR TEXT": lambda ds: ds.ContentSequence[0].TextValue,
    "SR PNAME": lambda ds: str(ds.ContentSequence[1].PersonName),
    "SR CODE meaning": lambda ds: ds.ContentSequence[2].ConceptCodeSequence[0].CodeMeaning,
    "SR concept name meaning": lambda ds: ds.ContentSequence[0].ConceptNameCodeSequence[0]
    .CodeMeaning,
    "SR nested TEXT": lambda ds: ds.ContentSequence[3].ContentSequence[0].TextValue,
}


def planted(person: Person, written: str) -> Dataset:
    text = sentence(person, written)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = ComprehensiveSRStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = person.original, "MRN-55012", "SR"
    ds.StudyDescription = text[:64]
    ds.ImageComments = ds.AdditionalPatientHistory = ds.PatientComments = text
    ds.ProcedureCodeSequence = Sequence([_code(text[:64], "P-1", "99LOCAL")])
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code(f"Report {written}"[:64], "18748-4", "LN")])
    ds.ContentSequence = Sequence([
        _item("TEXT", ConceptNameCodeSequence=Sequence([_code(f"Note {written}"[:64])]),
              TextValue=text),
        _item("PNAME", ConceptNameCodeSequence=Sequence([_code("Person")]),
              PersonName=person.original),
        _item("CODE", ConceptNameCodeSequence=Sequence([_code("Finding")]),
              ConceptCodeSequence=Sequence([_code(text[:64], "F-1", "99LOCAL")])),
        _item("CONTAINER", ConceptNameCodeSequence=Sequence([_code("Section")]),
              ContinuityOfContent="SEPARATE",
              ContentSequence=Sequence([_item("TEXT", TextValue=text)])),
    ])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def holds(text: str, person: Person, written: str) -> bool:
    """The test's own reading, by the guard's folding: in scripts without
    word boundaries anywhere, else as a whole word."""
    found, where = fold(written), fold(text)
    if person.script_unbounded and not written.isascii():
        return found in where
    return re.search(rf"(?<!\w){re.escape(found)}(?!\w)", where) is not None


CASES = [(person, written) for person in PEOPLE for written in person.written]


@pytest.mark.parametrize(("person", "written"), CASES,
                         ids=[f"{p.label}-{w}" for p, w in CASES])
def test_no_name_in_any_script_survives_in_any_place(tmp_path: Path, person: Person,
                                                      written: str) -> None:
    source = planted(person, written)
    original = tmp_path / "original.dcm"
    source.save_as(original, enforce_file_format=True)
    header = parse_file(original.read_bytes())
    originals = identifying_values(header, CLEANED)
    result = deidentify(header, PSEUDO.identifiers_for("MRN-55012"), PSEUDO, CLEANED)
    output = tmp_path / "output.dcm"
    output.write_bytes(result.dataset.encode())
    out = dcmread(BytesIO(output.read_bytes()))
    for place, read in PLACES.items():  # every place is still there, cleaned
        assert read(out) is not None, place
    assert [place for place, read in PLACES.items() if holds(read(out), person, written)] == []
    assert find_leaks(parse_file(output.read_bytes()), originals) == []
    guard = SeriesGuard(CLEANED.options)
    guard.add_original(original)
    assert [str(f) for f in guard.check(output)] == []
