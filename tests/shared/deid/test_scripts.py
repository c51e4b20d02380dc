"""Names in the world's scripts, planted in every free-text place the profile
keeps cleaned and in every SR item that holds text: the engine leaves none of
them in any place, and the guard, judging the output on its own, finds nothing
left."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread

from relay_shared.deid import DeidConfig, deidentify, find_leaks, identifying_values
from relay_shared.dicom.header import parse_file
from relay_shared.guard import SeriesGuard

from .planting import PSEUDO, Planted, script_cases, survivors

CLEANED = DeidConfig(options=frozenset({"cleanDescOpt", "cleanStructContOpt"}))

# Where `script_cases` writes a name: each place and how to read it from an output.
PLACES = {
    "StudyDescription": lambda ds: ds.StudyDescription,
    "ImageComments": lambda ds: ds.ImageComments,
    "AdditionalPatientHistory": lambda ds: ds.AdditionalPatientHistory,
    "PatientComments": lambda ds: ds.PatientComments,
    "ProcedureCode meaning": lambda ds: ds.ProcedureCodeSequence[0].CodeMeaning,
    "SR TEXT": lambda ds: ds.ContentSequence[0].TextValue,
    "SR concept name meaning": lambda ds: ds.ContentSequence[0].ConceptNameCodeSequence[0]
    .CodeMeaning,
    "SR PNAME": lambda ds: str(ds.ContentSequence[1].PersonName),
    "SR CODE meaning": lambda ds: ds.ContentSequence[2].ConceptCodeSequence[0].CodeMeaning,
    "SR nested TEXT": lambda ds: ds.ContentSequence[3].ContentSequence[0].TextValue,
}
CASES = script_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_no_name_in_any_script_survives_in_any_place(tmp_path: Path, case: Planted) -> None:
    original = tmp_path / "original.dcm"
    case.dataset.save_as(original, enforce_file_format=True)
    source = dcmread(original)
    written = [place for place, read in PLACES.items() if survivors(read(source), case.values)]
    assert set(PLACES) - {"SR PNAME"} <= set(written)  # the PNAME holds the original name
    header = parse_file(original.read_bytes())
    originals = identifying_values(header, CLEANED)
    ids = PSEUDO.identifiers_for(str(case.dataset.PatientID))
    result = deidentify(header, ids, PSEUDO, CLEANED)
    output = tmp_path / "output.dcm"
    output.write_bytes(result.dataset.encode())
    out = dcmread(BytesIO(output.read_bytes()))
    assert [place for place, read in PLACES.items() if survivors(read(out), case.values)] == []
    assert str(out.ContentSequence[1].PersonName) == "ANONYMIZED"
    assert find_leaks(parse_file(output.read_bytes()), originals) == []
    guard = SeriesGuard(CLEANED.options)
    guard.add_original(original)
    assert [str(f) for f in guard.check(output)] == []
