"""SR documents under the profile: by default the content tree is a dummy
(one TEXT item), under cleanStructContOpt it is kept with the same structure
and no identifying value. pydicom reads every output and the guard finds
nothing left in it; dcmtk's dsrdump parses it as an SR document."""

from __future__ import annotations

import re
import subprocess
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    BasicTextSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from relay_shared.deid import DeidConfig, deidentify, find_leaks, identifying_values
from relay_shared.dicom.header import parse_file
from relay_shared.guard import SeriesGuard
from relay_shared.guard.text import fold
from tests.support.tools import needs_tool

from .planting import PSEUDO

STUDY_UID = "1.2.826.0.1.3680043.8.498.4711.1"
PATIENT = "Okonkwo^Chidi"
RELATIVE = "Fairweather^Mildred"
LOCAL_CODE = "ACC20240001CT"
# Everything identifying the documents hold, as a person would search for it.
PLANTED = ["Okonkwo", "Chidi", "Fairweather", "Mildred", "Plantdoc", "MRN-55012",
           "ACC20240001", "19610412", "20240315", STUDY_UID, "+49 30 12345678",
           "m.fairweather@example.org", "123-45-6789", "12 March 2019", "030/1234567",
           "101500"]
TIME = "101500"  # kept under rtnLongModifDatesOpt: a whole-day shift keeps every interval
CLASSES = {"basic": BasicTextSRStorage, "enhanced": EnhancedSRStorage,
           "comprehensive": ComprehensiveSRStorage}


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def content(relationship: str, value_type: str, concept: Dataset | None, **values: object
            ) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, value_type
    if concept is not None:
        item.ConceptNameCodeSequence = Sequence([concept])
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def tree(kind: str) -> list[Dataset]:
    """Every value type the SR IODs share, and what the richer ones add."""
    items = [
        content("HAS OBS CONTEXT", "PNAME", code("121008", "DCM", "Person Observer Name"),
                PersonName="Plantdoc^Quentin"),
        content("CONTAINS", "TEXT", code("121106", "DCM", "Comment"), TextValue=(
            "Okonkwo's daughter Mildred Fairweather called from +49 30 12345678 "
            "(m.fairweather@example.org). Seen 12 March 2019; SSN 123-45-6789; chest stable.")),
        content("CONTAINS", "PNAME", code("121008", "DCM", "Person Observer Name"),
                PersonName=PATIENT),
        content("CONTAINS", "DATE", code("111060", "DCM", "Study Date"), Date="19610412"),
        content("CONTAINS", "DATETIME", code("111526", "DCM", "DateTime Started"),
                DateTime="20240315101500"),
        content("CONTAINS", "TIME", code("111061", "DCM", "Study Time"), Time="101500"),
        content("CONTAINS", "UIDREF", code("121018", "DCM", "Procedure Study Instance UID"),
                UID=STUDY_UID),
        content("CONTAINS", "CODE", code("121071", "DCM", "Finding"), ConceptCodeSequence=
                Sequence([code(LOCAL_CODE, "99LOCAL", "Nodule seen for Okonkwo")])),
    ]
    section = content("CONTAINS", "CONTAINER", code("121070", "DCM", "Findings"),
                      ContinuityOfContent="SEPARATE", ContentSequence=Sequence([
                          content("CONTAINS", "TEXT", code("121106", "DCM", "Comment"),
                                  TextValue="Okonkwo stable, call 030/1234567")]))
    if kind != "basic":
        number = content("CONTAINS", "NUM", code("121206", "DCM", "Distance"))
        measured = Dataset()
        measured.NumericValue = "12.5"
        measured.MeasurementUnitsCodeSequence = Sequence([code("mm", "UCUM", "millimeter")])
        number.MeasuredValueSequence = Sequence([measured])
        section.ContentSequence.append(number)
    if kind == "comprehensive":  # a by-reference relationship: the finding, from the comment
        by_reference = Dataset()
        by_reference.RelationshipType = "INFERRED FROM"
        by_reference.ReferencedContentItemIdentifier = [1, 2]
        items[7].ContentSequence = Sequence([by_reference])
    return [*items, section]


def document(kind: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = CLASSES[kind], "1.2.826.0.1.3680043.8.498.4711.3"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, "1.2.826.0.1.3680043.8.498.4711.2"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = \
        PATIENT, "MRN-55012", "19610412", "M"
    ds.ResponsiblePerson = RELATIVE
    ds.StudyDate, ds.StudyTime, ds.ContentDate, ds.ContentTime = \
        "20240315", "101500", "20240315", "101500"
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = "ACC20240001", "S1", ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "SR", 1, 1, "ACME"
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence([code(LOCAL_CODE, "99LOCAL", "CT chest")])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic imaging report")])
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "2000"
    ds.ContentTemplateSequence = Sequence([template])
    ds.ContentSequence = Sequence(tree(kind))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def shape(items: Sequence, depth: int = 0) -> list[tuple]:
    """The tree without its values: relationships, value types, concept names, references."""
    out: list[tuple] = []
    for item in items:
        concept = item.get("ConceptNameCodeSequence")
        out.append((depth, item.RelationshipType, item.get("ValueType"),
                    concept[0].CodeValue if concept else None,
                    tuple(item.get("ReferencedContentItemIdentifier") or ())))
        out += shape(item.get("ContentSequence", []), depth + 1)
    return out


def texts(ds: Dataset) -> str:
    parts = []
    for elem in ds.iterall():
        if elem.VR != "SQ" and elem.value is not None:
            parts.append(str(elem.value))
    return fold("\n".join(parts))


def left(ds: Dataset, but: tuple[str, ...] = ()) -> list[str]:
    return [v for v in PLANTED if fold(v) in texts(ds) and v not in but]


def run(tmp_path: Path, kind: str, options: frozenset[str], implicit: bool = False
        ) -> tuple[Dataset, Path]:
    original = tmp_path / "original.dcm"
    source = document(kind)
    if implicit:
        source.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    source.save_as(original, enforce_file_format=True, implicit_vr=implicit)
    header = parse_file(original.read_bytes())
    config = DeidConfig(options=options)
    originals = identifying_values(header, config)
    result = deidentify(header, PSEUDO.identifiers_for("MRN-55012"), PSEUDO, config)
    output = tmp_path / "output.dcm"
    output.write_bytes(result.dataset.encode())
    assert find_leaks(parse_file(output.read_bytes()), originals) == []
    guard = SeriesGuard(options, PSEUDO.identifiers_for("MRN-55012").date_shift_days)
    guard.add_original(original)
    assert [str(f) for f in guard.check(output)] == []
    return dcmread(BytesIO(output.read_bytes())), output


OPTION_SETS = {"default": frozenset(), "cleaned": frozenset({"cleanStructContOpt"}),
               "cleaned, shifted": frozenset({"cleanStructContOpt", "rtnLongModifDatesOpt"})}


# dcmtk is installed by tests/support/install-system-deps.sh.
@pytest.mark.dcmtk
@needs_tool("dsrdump", "dcmtk")
@pytest.mark.parametrize("kind", sorted(CLASSES))
@pytest.mark.parametrize("options", sorted(OPTION_SETS))
def test_dcmtk_reads_every_output_as_an_sr_document(tmp_path: Path, kind: str,
                                                   options: str) -> None:
    _, output = run(tmp_path, kind, OPTION_SETS[options])
    done = subprocess.run(["dsrdump", str(output)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not re.search(r"^[EF]:", done.stderr, re.MULTILINE), done.stderr
    assert "<CONTAINER:" in done.stdout and "<contains TEXT:" in done.stdout


@pytest.mark.parametrize("kind", sorted(CLASSES))
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_the_content_tree_is_a_dummy_by_default(tmp_path: Path, kind: str, implicit: bool
                                                ) -> None:
    source = document(kind)
    assert left(source) == PLANTED  # the planted values are there to be found
    out, _ = run(tmp_path, kind, frozenset(), implicit)
    assert out.file_meta.TransferSyntaxUID == (ImplicitVRLittleEndian if implicit
                                               else ExplicitVRLittleEndian)
    assert left(out) == []
    assert len(out.ContentSequence) == 1
    dummy = out.ContentSequence[0]
    assert (dummy.RelationshipType, dummy.ValueType, dummy.TextValue) == \
        ("CONTAINS", "TEXT", "ANONYMIZED")
    assert dummy.ConceptNameCodeSequence[0].CodeValue == "121106"
    assert "ContentTemplateSequence" not in out  # the dummy follows no template
    assert (out.ValueType, out.SOPClassUID) == ("CONTAINER", CLASSES[kind])


@pytest.mark.parametrize("kind", sorted(CLASSES))
@pytest.mark.parametrize("dates", ["dummied", "shifted"])
def test_clean_structured_content_keeps_the_tree_without_identifiers(
        tmp_path: Path, kind: str, dates: str) -> None:
    options = frozenset({"cleanStructContOpt"} | ({"rtnLongModifDatesOpt"}
                                                 if dates == "shifted" else set()))
    out, _ = run(tmp_path, kind, options)
    assert left(out, but=(TIME,) if dates == "shifted" else ()) == []
    assert shape(out.ContentSequence) == shape(document(kind).ContentSequence)
    items = out.ContentSequence
    assert str(items[0].PersonName) == str(items[2].PersonName) == "ANONYMIZED"
    assert "chest stable" in items[1].TextValue and "***" in items[1].TextValue
    assert PSEUDO.uid(STUDY_UID) == items[6].UID
    code_item = items[7].ConceptCodeSequence[0]
    assert code_item.CodeValue == PSEUDO.code("99LOCAL", LOCAL_CODE)
    assert code_item.CodeMeaning == "Nodule seen for ***"
    assert items[8].ContentSequence[0].TextValue == "*** stable, call ***"
    if dates == "shifted":
        shift = PSEUDO.identifiers_for("MRN-55012").date_shift_days
        assert items[3].Date == (date(1961, 4, 12) + timedelta(days=shift)).strftime("%Y%m%d")
        assert items[5].Time == TIME
    else:
        assert (items[3].Date, items[4].DateTime, items[5].Time) == \
            ("19000101", "19000101000000", "000000")
