"""The guard alone, on originals and outputs built with pydicom: it finds what
an output still gives away, in every script, and lets pass what does not."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from relay_shared.deid import Pseudonymizer
from relay_shared.guard import SeriesGuard, Unreadable, minted
from relay_shared.guard.rules import default_rules
from relay_shared.guard.text import fold
from tests.support.multilingual import PEOPLE, Person, sentence

MINT = Pseudonymizer(b"guard-test-secret-0123456789")
RELAY_IMPLEMENTATION = "2.25.203119865915658395283935473520183512065"


def original(name: str = "DOE^JOHN", **values: object) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, "MRN-778899", "19610412"
    ds.AccessionNumber, ds.StudyDate, ds.SeriesDate = "ACC-20240001", "20240315", "20240315"
    ds.InstitutionName, ds.Modality, ds.BodyPartExamined = "Saint Elsewhere", "CT", "CHEST"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def output_of(source: Dataset, **values: object) -> Dataset:
    """What a correct de-identification of `source` looks like."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = source.SOPClassUID
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        setattr(ds, keyword, MINT.uid(getattr(source, keyword)))
    ds.PatientName, ds.PatientID = "PSEUDONYM^ABCDEFGHIJ", "PSNABCDEFGHIJKLM"
    ds.PatientIdentityRemoved, ds.Modality = "YES", source.Modality
    ds.BodyPartExamined = source.BodyPartExamined
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def save(ds: Dataset, path: Path, syntax: str = ExplicitVRLittleEndian) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = RELAY_IMPLEMENTATION
    ds.save_as(path, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian)
    return path


def findings(tmp_path: Path, source: Dataset, out: Dataset, options: frozenset[str] = frozenset(),
             shift: int | None = None) -> list[str]:
    guard = SeriesGuard(options, shift)
    guard.add_original(save(source, tmp_path / "original.dcm"))
    return [str(f) for f in guard.check(save(out, tmp_path / "output.dcm"))]


def test_a_correct_output_passes(tmp_path: Path) -> None:
    source = original()
    assert findings(tmp_path, source, output_of(source)) == []


# Free-text places and SR items where a report or a technologist writes names.
def _text_item(text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", text
    return item


def _pname_item(name: str) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType, item.PersonName = "CONTAINS", "PNAME", name
    return item


def _code_item(meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121106", "DCM", meaning
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "CODE"
    item.ConceptCodeSequence = Sequence([code])
    return item


def _nested(text: str) -> Dataset:
    container = Dataset()
    container.RelationshipType, container.ValueType = "CONTAINS", "CONTAINER"
    container.ContentSequence = Sequence([_text_item(text)])
    return container


def _procedure(ds: Dataset, meaning: str) -> None:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "P-1", "99LOCAL", meaning
    ds.ProcedureCodeSequence = Sequence([code])


def _titled(ds: Dataset, meaning: str) -> None:
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = \
        "121106", "DCM", meaning
    ds.ContentSequence = Sequence([_text_item("no finding")])
    ds.ContentSequence[0].ConceptNameCodeSequence = Sequence([concept])


def _private(ds: Dataset, text: str) -> None:
    ds.private_block(0x0011, "ACME Corp", create=True).add_new(0x01, "LO", text)


def _as_un(ds: Dataset, text: str) -> None:
    ds.add(DataElement(0x00204000, "UN", text.encode("utf-8")))  # ImageComments, VR lost


PLACES = {
    "ImageComments": ("(0020,4000)", lambda ds, t: setattr(ds, "ImageComments", t)),
    "StudyDescription": ("(0008,1030)", lambda ds, t: setattr(ds, "StudyDescription", t[:64])),
    "AdditionalPatientHistory": ("(0010,21B0)",
                                 lambda ds, t: setattr(ds, "AdditionalPatientHistory", t)),
    "PatientComments": ("(0010,4000)", lambda ds, t: setattr(ds, "PatientComments", t)),
    "ProcedureCode meaning": ("(0008,1032)[0].(0008,0104)", lambda ds, t: _procedure(ds, t[:64])),
    "SR concept name meaning": ("(0040,A730)[0].(0040,A043)[0].(0008,0104)",
                                lambda ds, t: _titled(ds, t[:64])),
    "SR TEXT": ("(0040,A730)[0].(0040,A160)",
                lambda ds, t: setattr(ds, "ContentSequence", Sequence([_text_item(t)]))),
    "SR PNAME": ("(0040,A730)[0].(0040,A123)",
                 lambda ds, t: setattr(ds, "ContentSequence", Sequence([_pname_item(t)]))),
    "SR CodeMeaning": ("(0040,A730)[0].(0040,A168)[0].(0008,0104)",
                       lambda ds, t: setattr(ds, "ContentSequence",
                                             Sequence([_code_item(t[:64])]))),
    "SR nested TEXT": ("(0040,A730)[0].(0040,A730)[0].(0040,A160)",
                       lambda ds, t: setattr(ds, "ContentSequence", Sequence([_nested(t)]))),
    "private LO": ("(0011,1001)", _private),
    "public as UN": ("(0020,4000)", _as_un),
}
CASES = [(person, written, place) for person in PEOPLE for written in person.written
         for place in PLACES]


@pytest.mark.parametrize(("person", "written", "place"), CASES,
                         ids=[f"{p.label}-{w}-{place}" for p, w, place in CASES])
def test_a_name_in_any_script_is_found_wherever_it_is_planted(
        tmp_path: Path, person: Person, written: str, place: str) -> None:
    source = original(person.original)
    out = output_of(source, SOPClassUID=BasicTextSRStorage)
    path, plant = PLACES[place]
    plant(out, written if place == "SR PNAME" else sentence(person, written))
    found = findings(tmp_path, source, out)
    assert any(f.startswith(path + ":") for f in found), found


@pytest.mark.parametrize(("place", "text"), [
    ("ImageComments", "Call the family on +49 30 12345678"),
    ("SR TEXT", "Reachable at jane.roe@example.org"),
    ("SR nested TEXT", "Prior study 12 March 2019"),
    ("StudyDescription", "CT 2019年3月12日"),
    ("AdditionalPatientHistory", "SSN 123-45-6789"),
    ("ImageComments", "Rückruf 0171 2345678"),
    ("SR TEXT", "DOB 03-Mar-1975"),
])
def test_an_identifying_pattern_in_kept_free_text_is_found(tmp_path: Path, place: str,
                                                           text: str) -> None:
    source = original()
    out = output_of(source)
    path, plant = PLACES[place]
    plant(out, text)
    assert any(f.startswith(path + ":") for f in findings(tmp_path, source, out))


def test_an_original_in_a_local_code_is_found(tmp_path: Path) -> None:
    source = original()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = \
        "CT-ACC-20240001", "99LOCAL", "Chest"
    out = output_of(source, ProcedureCodeSequence=Sequence([code]))
    assert findings(tmp_path, source, out) == [
        "(0008,1032)[0].(0008,0100): an original value in a code"]


def test_a_uid_the_relay_did_not_mint_is_found(tmp_path: Path) -> None:
    source = original()
    out = output_of(source, FrameOfReferenceUID=generate_uid())  # never seen, never minted
    assert findings(tmp_path, source, out) == ["(0020,0052): a UID the relay did not mint"]


def test_an_original_uid_is_found_in_the_file_meta_and_in_text(tmp_path: Path) -> None:
    source = original()
    out = output_of(source, ImageComments=f"see {source.StudyInstanceUID}")
    guard = SeriesGuard()
    guard.add_original(save(source, tmp_path / "original.dcm"))
    path = save(out, tmp_path / "output.dcm")
    out.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
    out.save_as(path)  # as it is: pydicom would otherwise correct the file meta
    assert sorted(str(f) for f in guard.check(path)) == [
        "(0002,0003): an original UID", "(0020,4000): an original UID in text"]


def test_every_uid_the_relay_mints_counts_as_minted() -> None:
    rules = default_rules()
    for text in ("1.2.3", "x", "", "1.2.840.113619.2.55.3"):
        assert minted(MINT.uid(text), rules)
    assert not minted("2.25." + str(1 << 127), rules)  # a UUID, not laid out as version 8
    assert not minted(generate_uid(), rules)


def test_values_written_under_a_wrong_vr_are_still_found(tmp_path: Path) -> None:
    """The original stores its StudyDate as LO and its StudyInstanceUID as SH;
    an output that kept them is refused all the same."""
    source = original()
    source.add(DataElement(0x00080020, "LO", "20240315"))
    source.add(DataElement(0x0020000D, "SH", "1.2.826.0.1.3680043.8.498.1"))
    out = output_of(source)
    out.add(DataElement(0x00080020, "LO", "20240315"))
    out.add(DataElement(0x0020000D, "SH", "1.2.826.0.1.3680043.8.498.1"))
    assert sorted(findings(tmp_path, source, out)) == [
        "(0008,0020): an original date", "(0020,000D): an original UID"]


def test_an_implicit_vr_original_is_read_by_the_dictionary(tmp_path: Path) -> None:
    source = original("Ortega^Inés", ImageComments="private note")
    guard = SeriesGuard()
    guard.add_original(save(source, tmp_path / "original.dcm", ImplicitVRLittleEndian))
    out = output_of(source, ImageComments="Dr Inés Ortega reviewed")
    assert [str(f) for f in guard.check(save(out, tmp_path / "output.dcm"))] == [
        "(0020,4000): an original value in free text"]


def test_an_output_the_guard_cannot_read_fails(tmp_path: Path) -> None:
    source = original()
    guard = SeriesGuard()
    guard.add_original(save(source, tmp_path / "original.dcm"))
    path = save(output_of(source), tmp_path / "output.dcm")
    path.write_bytes(path.read_bytes()[:-7])
    assert [str(f) for f in guard.check(path)] == [
        "the guard cannot read the output: a value runs past the end of its data set"]


@pytest.mark.parametrize("pixels", [False, True])
@pytest.mark.parametrize("padding", [1, 3, 100, 300_000])
def test_zeros_after_the_data_set_are_padding(tmp_path: Path, pixels: bool,
                                              padding: int) -> None:
    """Media written in sectors pad the last one with zeros: the file is read to
    its data set's end, in the head and in what follows the pixels alike."""
    source = original()
    guard = SeriesGuard()
    path = save(_large(source) if pixels else source, tmp_path / "original.dcm")
    path.write_bytes(path.read_bytes() + bytes(padding))
    guard.add_original(path)
    out = output_of(source, ImageComments="reviewed by Doe")
    path = save(_large(out) if pixels else out, tmp_path / "output.dcm")
    path.write_bytes(path.read_bytes() + bytes(padding))
    assert [str(f) for f in guard.check(path)] == ["(0020,4000): an original value in free text"]


@pytest.mark.parametrize("pixels", [False, True])
@pytest.mark.parametrize("trailer", [b"\x01", b"\x00" * 8 + b"DOE", b"DOE JOHN" + b"\x00" * 64])
def test_other_bytes_after_the_data_set_are_refused(tmp_path: Path, pixels: bool,
                                                     trailer: bytes) -> None:
    """Bytes that are not all zeros could hide a value: never skipped."""
    source = original()
    path = save(_large(source) if pixels else source, tmp_path / "original.dcm")
    path.write_bytes(path.read_bytes() + trailer)
    with pytest.raises(Unreadable):
        SeriesGuard().add_original(path)
    guard = SeriesGuard()
    guard.add_original(save(source, tmp_path / "clean.dcm"))
    assert [f.path for f in guard.check(path)] == [""]


def test_sequences_nested_deeper_than_32_levels_are_read(tmp_path: Path) -> None:
    """As deep as the profile de-identifies: a name at the bottom is still found."""
    source = original()
    out = output_of(source)
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "1", "99X", "for Doe"
    for _ in range(100):
        outer = Dataset()
        outer.AnatomicRegionSequence = Sequence([inner])
        inner = outer
    out.AnatomicRegionSequence = inner.AnatomicRegionSequence
    found = findings(tmp_path, source, out)
    assert len(found) == 1 and found[0].endswith("(0008,0104): an original value in free text")


# What must not be taken for a leak.
def test_input_already_anonymized_does_not_match_the_relays_dummy(tmp_path: Path) -> None:
    source = original("ANONYMIZED", PatientID="ANONYMIZED", InstitutionName="ANONYMIZED",
                      ContentDate="19000101", PatientBirthDate="19000101")
    out = output_of(source, PatientName="ANONYMIZED", ReferringPhysicianName="ANONYMIZED",
                    InstitutionName="ANONYMIZED", ContentDate="19000101")
    assert findings(tmp_path, source, out) == []


def test_a_surname_equal_to_a_code_string_is_only_a_name_in_names(tmp_path: Path) -> None:
    source = original("HEAD^JOHN", BodyPartExamined="HEAD", StudyDescription="CT HEAD")
    out = output_of(source, StudyDescription="CT HEAD")  # kept under cleanDescOpt
    assert findings(tmp_path, source, out, frozenset({"cleanDescOpt"})) == []
    out.ReferringPhysicianName = "HEAD"  # but a person called Head is still a leak
    assert findings(tmp_path, source, out, frozenset({"cleanDescOpt"})) == [
        "(0008,0090): an original value in a person name"]


@pytest.mark.parametrize("options", [frozenset(), frozenset({"cleanDescOpt"})])
def test_a_description_is_not_an_original_itself(tmp_path: Path,
                                                 options: frozenset[str]) -> None:
    """Descriptions are removed because they may hold an identifier: their words
    in a kept attribute are no leak, what they hold still is."""
    source = original(StudyDescription="Brain", SeriesDescription="Abdomen",
                      ImageComments="Patient Doe, follow-up")
    out = output_of(source, PositionReferenceIndicator="Brain",
                    ManufacturerModelName="Abdomen scanner", DerivationDescription="follow-up")
    assert findings(tmp_path, source, out, options) == []
    out.DerivationDescription = "Patient Doe, follow-up"
    assert findings(tmp_path, source, out, options) == [
        "(0008,2111): an original value in free text"]

def test_a_shifted_date_may_land_on_another_original_date(tmp_path: Path) -> None:
    source = original(StudyDate="20240320", SeriesDate="20240320", PatientBirthDate="20240315")
    out = output_of(source, StudyDate="20240315", SeriesDate="20240315")  # shifted by -5 days
    options = frozenset({"rtnLongModifDatesOpt"})
    assert findings(tmp_path, source, out, options, shift=-5) == []
    assert findings(tmp_path, source, out, options, shift=-6) == [
        "(0008,0020): an original date", "(0008,0021): an original date"]


def test_a_newborn_imaged_on_its_birth_date_with_full_dates_kept(tmp_path: Path) -> None:
    source = original(PatientBirthDate="20240315", StudyDate="20240315")
    out = output_of(source, StudyDate="20240315", SeriesDate="20240315")
    assert findings(tmp_path, source, out, frozenset({"rtnLongFullDatesOpt"})) == []
    assert findings(tmp_path, source, out) == [
        "(0008,0020): an original date", "(0008,0021): an original date"]


def test_a_retained_uid_passes_under_rtnuidsopt(tmp_path: Path) -> None:
    source = original()
    out = output_of(source, StudyInstanceUID=source.StudyInstanceUID)
    assert findings(tmp_path, source, out, frozenset({"rtnUIDsOpt"})) == []
    assert findings(tmp_path, source, out) == ["(0020,000D): an original UID"]


def test_a_retained_sop_instance_uid_and_its_file_meta_copy_pass_under_rtnuidsopt(
        tmp_path: Path) -> None:
    source = original()
    out = output_of(source, SOPInstanceUID=source.SOPInstanceUID)  # the meta follows it
    assert findings(tmp_path, source, out, frozenset({"rtnUIDsOpt"})) == []
    assert findings(tmp_path, source, out) == ["(0002,0003): an original UID",
                                               "(0008,0018): an original UID"]

def test_a_short_uid_kept_under_rtnuidsopt_passes(tmp_path: Path) -> None:
    """DCMTK's "0" for an unknown reference, kept by Retain UIDs."""
    reference = Dataset()
    reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = "0", "0"
    source = original(ReferencedImageSequence=Sequence([reference]))
    out = output_of(source, ReferencedImageSequence=Sequence([reference]))
    assert findings(tmp_path, source, out, frozenset({"rtnUIDsOpt"})) == []

def test_an_sr_uid_and_a_digital_signature_uid_pass_under_rtnuidsopt(tmp_path: Path) -> None:
    """PS3.15 keeps every replaced UID under Retain UIDs, these two included."""
    source = original()
    item, signature = Dataset(), Dataset()
    item.UID = source.StudyInstanceUID  # an SR item's UIDREF naming the study
    signature.DigitalSignatureUID = generate_uid()
    source.ContentSequence = Sequence([item])
    source.DigitalSignaturesSequence = Sequence([signature])
    out = output_of(source, ContentSequence=Sequence([item]),
                    StudyInstanceUID=source.StudyInstanceUID,
                    DigitalSignaturesSequence=Sequence([signature]))
    assert findings(tmp_path, source, out, frozenset({"rtnUIDsOpt"})) == []


@given(data=st.data())
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_file_is_a_finding_never_an_exception(tmp_path: Path, data: st.DataObject
                                                        ) -> None:
    """Bytes flipped, cut or inserted anywhere: the original is refused with
    `Unreadable` or read, the output gives findings or none, nothing raises."""
    source = original("Kim^Minjun=김^민준", ImageComments="보호자 +82 2 312 3456",
                      SOPInstanceUID="1.2.3.4.5.6", StudyInstanceUID="1.2.3.4.5.7",
                      SeriesInstanceUID="1.2.3.4.5.8")  # the same bytes every time
    source.ContentSequence = Sequence([_nested("김민준 환자"), _pname_item("Li^Wei")])
    clean = bytearray(save(source, tmp_path / "clean.dcm").read_bytes())
    damaged = bytearray(clean)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        match data.draw(st.sampled_from(["flip", "cut", "insert"])):
            case "flip":
                damaged[at] = data.draw(st.integers(0, 255))
            case "cut":
                del damaged[at:at + data.draw(st.integers(1, 64))]
            case "insert":
                damaged[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(damaged) or b"\x00")
    guard = SeriesGuard()
    with contextlib.suppress(Unreadable):
        guard.add_original(path)
    guard.add_original(tmp_path / "clean.dcm")
    assert isinstance(guard.check(path), list)
    found = guard.check(tmp_path / "clean.dcm")  # the original itself, as an output
    assert any("(0040,A730)[0].(0040,A730)[0].(0040,A160)" in str(f) for f in found)


ALPHABETS = {
    "latin": "abcdefghijklmnopqrstuvwxyzäöüßéèçñłøåıę",  # noqa: RUF001 (the dotless i)
    "greek": "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюяёї",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשת",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
}
UNBOUNDED = {"han": "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗小明华伟芳娜静",
             "hangul": "김이박최정강조윤장임민준서연지우",
             "kana": "やまだたろうさとうヤマダタロウ"}


@given(script=st.sampled_from(sorted(ALPHABETS)), data=st.data(),
       change=st.sampled_from([str.upper, str.lower, str.title]))
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_surname_in_a_spaced_script_is_found_in_any_case(
        tmp_path: Path, script: str, data: st.DataObject, change) -> None:
    rules = default_rules()
    # Not a particle, a placeholder, nor a word of the original's codes (CT, CHEST,
    # ISO_IR 192): those are looked for in names only, as documented.
    ordinary = rules.name_particles | rules.placeholders | {"iso", "ir", "ct", "chest"}
    surname = data.draw(st.text(ALPHABETS[script], min_size=3, max_size=10).filter(
        lambda s: fold(s) not in ordinary))
    source = original(f"{surname}^Ann")
    out = output_of(source, ImageComments=f"Seen by {change(surname)}, stable.")
    assert findings(tmp_path, source, out) == ["(0020,4000): an original value in free text"]


@given(script=st.sampled_from(sorted(UNBOUNDED)), data=st.data())
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_name_in_a_script_without_spaces_is_found_inside_text(
        tmp_path: Path, script: str, data: st.DataObject) -> None:
    family = data.draw(st.text(UNBOUNDED[script], min_size=1, max_size=2))
    given_name = data.draw(st.text(UNBOUNDED[script], min_size=1, max_size=3))
    source = original(f"{family}^{given_name}")
    out = output_of(source, ImageComments=f"报告{given_name}已复查")
    assert findings(tmp_path, source, out) == ["(0020,4000): an original value in free text"]


def test_text_written_where_the_dictionary_has_a_number_is_read_as_text(tmp_path: Path
                                                                        ) -> None:
    source = original()
    out = output_of(source)
    out.add(DataElement(0x00280010, "LO", "DOE JOHN"))  # Rows, a US, written as text
    assert findings(tmp_path, source, out) == ["(0028,0010): an original value in free text"]


def _large(ds: Dataset) -> Dataset:
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = bytes(512 * 512 * 2)
    return ds


@pytest.mark.parametrize("header_bytes", [0, 300_000])
def test_what_follows_large_pixel_data_is_read(tmp_path: Path, header_bytes: int) -> None:
    """The guard reads a large file's header and what follows its pixels, not
    the pixels; a header longer than it first reads is read whole."""
    source = original()
    out = _large(output_of(source))
    if header_bytes:
        out.private_block(0x0019, "ACME BLOB", create=True).add_new(0x01, "OB",
                                                                    bytes(header_bytes))
    out.add(DataElement(0x7FE10010, "LO", "DOE JOHN"))  # private, after the pixel data
    assert findings(tmp_path, source, out) == ["(7FE1,0010): an original value in free text"]
    assert (tmp_path / "output.dcm").stat().st_size > 500_000


def test_an_attribute_an_option_keeps_is_not_judged_by_the_detectors(tmp_path: Path) -> None:
    source = original(DeviceSerialNumber="123456789", StationName="CT-555-0199")
    out = output_of(source, DeviceSerialNumber="123456789", StationName="CT-555-0199")
    assert findings(tmp_path, source, out, frozenset({"rtnDevIdOpt"})) == []
    assert findings(tmp_path, source, out) == [
        "(0008,1010): an original value in free text",
        "(0018,1000): an original value in free text"]


def test_a_deflated_output_is_read_inflated(tmp_path: Path) -> None:
    source = original("Müller^Zoë")
    guard = SeriesGuard()
    guard.add_original(save(source, tmp_path / "original.dcm", DeflatedExplicitVRLittleEndian))
    out = output_of(source, ImageComments="Befund an Frau Zoe Muller")
    path = save(out, tmp_path / "output.dcm", DeflatedExplicitVRLittleEndian)
    assert b"Muller" not in path.read_bytes()  # only readable once inflated
    assert [str(f) for f in guard.check(path)] == ["(0020,4000): an original value in free text"]


def test_a_name_written_into_a_code_meaning_is_not_made_a_code_word(tmp_path: Path) -> None:
    """The vocabulary takes a code meaning whole: a RIS that wrote the patient's
    name into one does not make the name an ordinary word."""
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "CT01", "99RIS"
    code.CodeMeaning = "CT chest for Okonkwo"
    source = original("OKONKWO^ADA", ProcedureCodeSequence=Sequence([code]))
    out = output_of(source, ImageComments="Okonkwo tolerated the scan")
    assert findings(tmp_path, source, out) == ["(0020,4000): an original value in free text"]


@pytest.mark.parametrize(("value_type", "keyword", "path", "reason"), [
    ("DATE", "Date", "(0040,A121)", "an original date"),
    ("DATETIME", "DateTime", "(0040,A120)", "an original date"),
    ("UIDREF", "UID", "(0040,A124)", "an original UID"),
    ("PNAME", "PersonName", "(0040,A123)", "an original value in a person name"),
])
def test_an_original_in_any_sr_item_type_is_found(tmp_path: Path, value_type: str,
                                                  keyword: str, path: str, reason: str) -> None:
    source = original()
    values = {"DATE": source.PatientBirthDate, "DATETIME": source.StudyDate + "101500",
              "UIDREF": source.StudyInstanceUID, "PNAME": "John Doe"}
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", value_type
    setattr(item, keyword, values[value_type])
    container = Dataset()
    container.RelationshipType, container.ValueType = "CONTAINS", "CONTAINER"
    container.ContentSequence = Sequence([item])
    out = output_of(source, SOPClassUID=BasicTextSRStorage, ContentSequence=Sequence([container]))
    assert findings(tmp_path, source, out) == [f"(0040,A730)[0].(0040,A730)[0].{path}: {reason}"]
