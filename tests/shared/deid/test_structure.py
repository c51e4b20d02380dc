"""Depth, private blocks, graphics groups, file meta and provenance."""

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from relay_shared.deid import DeidConfig, deidentify, find_leaks, identifying_values

from .planting import PSEUDO, reread


def base() -> Dataset:
    from .planting import planted_dataset

    ds = Dataset()
    ds.file_meta = planted_dataset().file_meta
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "MRN-4711"
    ds.StudyDate = "20240105"
    ds.StudyInstanceUID = "1.2.999.1"
    return ds


def three_deep() -> Dataset:
    inner = Dataset()
    inner.PersonName = "WATSON^EMMA"  # D at depth 3
    inner.ReferencedSOPInstanceUID = "1.2.999.77"
    inner.PatientID = "MRN-4711"
    middle = Dataset()
    middle.ContentSequence = Sequence([inner])
    middle.ObservationDateTime = "20240105101010"
    outer = Dataset()
    outer.ContentSequence = Sequence([middle])
    outer.InstitutionName = "SAINT ELSEWHERE"
    ds = base()
    ds.ContentSequence = Sequence([outer])
    return ds


def test_sequences_three_deep_get_the_profile() -> None:
    ds = reread(three_deep())
    originals = identifying_values(ds)
    # The content tree is kept (cleaned) under this option only; else it is a dummy.
    config = DeidConfig(options=frozenset({"cleanStructContOpt"}))
    out = deidentify(ds, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config).dataset
    outer = out.ContentSequence[0]
    middle = outer.ContentSequence[0]
    inner = middle.ContentSequence[0]
    assert "InstitutionName" not in outer
    assert "ObservationDateTime" not in middle
    assert inner.PersonName != "WATSON^EMMA"
    assert inner.ReferencedSOPInstanceUID == PSEUDO.uid("1.2.999.77")
    assert inner.PatientID == PSEUDO.identifiers_for("MRN-4711").patient_id
    assert find_leaks(out, originals) == []


def private_dataset() -> Dataset:
    ds = base()
    block = ds.private_block(0x0011, "HOSPITAL PRIVATE 1", create=True)
    block.add_new(0x01, "PN", "DOE^JOHN")
    block.add_new(0x02, "LO", "MRN-4711")
    safe = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    safe.add_new(0x0C, "IS", "1000")  # B value: on the safe list
    safe.add_new(0x99, "LO", "DOE^JOHN")  # not on it
    return ds


def test_private_blocks_are_removed_by_default() -> None:
    ds = reread(private_dataset())
    out = deidentify(ds, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, DeidConfig())
    assert not [t for t in out.dataset.keys() if t >> 16 & 1]  # noqa: SIM118 (a Dataset iterates elements)
    assert out.audit["private_removed"] == 6


def test_safe_private_keeps_listed_elements_and_their_creator_only() -> None:
    ds = reread(private_dataset())
    config = DeidConfig(options=frozenset({"rtnSafePrivOpt"}))
    originals = identifying_values(ds, config)
    out = deidentify(ds, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config).dataset
    private = sorted(t for t in out.keys() if t >> 16 & 1)  # noqa: SIM118 (a Dataset iterates elements)
    assert private == [0x00190010, 0x0019100C]
    assert out[0x0019100C].value == 1000
    assert find_leaks(out, originals) == []


def test_curves_and_overlays_go_unless_clean_graphics() -> None:
    ds = base()
    ds.add_new(0x60000010, "US", 512)
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)
    ds.add_new(0x60004000, "LT", "annotated for DOE^JOHN")
    ds.add_new(0x50000005, "US", 1)
    out = deidentify(reread(ds), PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig()).dataset
    assert not [t for t in out.keys() if 0x5000 <= t >> 16 <= 0x60FF]  # noqa: SIM118 (a Dataset iterates elements)
    kept = deidentify(reread(ds), PSEUDO.identifiers_for("X"), PSEUDO,
                      DeidConfig(options=frozenset({"cleanGraphOpt"}))).dataset
    assert kept[0x60003000].value == b"\x00\x01" * 8
    assert "DOE" not in kept[0x60004000].value


def test_file_meta_follows_and_drops_source_names() -> None:
    ds = base()
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    ds.file_meta.ImplementationVersionName = "VENDOR_1"
    out = deidentify(reread(ds), PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig()).dataset
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.SOPInstanceUID == PSEUDO.uid(ds.SOPInstanceUID)
    assert "SourceApplicationEntityTitle" not in out.file_meta
    assert out.file_meta.ImplementationVersionName != "VENDOR_1"


def codes(out: Dataset) -> list[str]:
    return [item.CodeValue for item in out.DeidentificationMethodCodeSequence]


def test_provenance_names_profile_and_options() -> None:
    out = deidentify(reread(base()), PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig()).dataset
    assert out.PatientIdentityRemoved == "YES"
    assert codes(out) == ["113100"]
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert out.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    config = DeidConfig(options=frozenset({"rtnLongModifDatesOpt", "rtnDevIdOpt"}))
    out = deidentify(reread(base()), PSEUDO.identifiers_for("X"), PSEUDO, config).dataset
    assert codes(out) == ["113100", "113107", "113109"]
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    config = DeidConfig(options=frozenset({"rtnLongFullDatesOpt"}))
    out = deidentify(reread(base()), PSEUDO.identifiers_for("X"), PSEUDO, config).dataset
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert out.StudyDate == "20240105"


def test_modified_dates_shift_da_and_dt_keep_time_and_timezone() -> None:
    ds = base()
    ds.AcquisitionDateTime = "20240105101500.123+0100"
    ds.StudyTime = "101500"
    ids = PSEUDO.identifiers_for("MRN-4711")
    config = DeidConfig(options=frozenset({"rtnLongModifDatesOpt"}))
    out = deidentify(reread(ds), ids, PSEUDO, config)
    from datetime import date, timedelta

    shifted = (date(2024, 1, 5) + timedelta(days=ids.date_shift_days)).strftime("%Y%m%d")
    assert out.dataset.StudyDate == shifted
    assert out.dataset.AcquisitionDateTime == shifted + "101500.123+0100"
    assert out.dataset.StudyTime == "101500"
    assert "(0008,0020)" in out.audit["shifted"]


def test_audit_lists_tags_never_values() -> None:
    result = deidentify(reread(three_deep()), PSEUDO.identifiers_for("MRN-4711"), PSEUDO,
                        DeidConfig())
    text = repr(result.audit)
    for value in ("DOE", "MRN-4711", "WATSON", "20240105", "1.2.999"):
        assert value not in text
    assert result.audit["key_id"] == "test"
    assert "(0010,0010)" in result.audit["replaced"]
    assert "DOE" not in repr(result.originals)
