"""explain(): what the profile did to each attribute, read from a copy taken before, the
engine's own output unchanged."""

from __future__ import annotations

from pathlib import Path

from relay_shared.deid import DeidConfig, Pseudonymizer, deidentify
from relay_shared.deid.explain import explain
from relay_shared.deid.streamcopy import load_header
from tests.support.dicom_factory import Patient, SeriesSpec, write_series

PATIENT = Patient("MRN-4242", "Lovelace^Ada", accession="ACC-4242")


def test_explain_names_each_attribute_and_leaves_the_engine_output_unchanged(
        tmp_path: Path) -> None:
    (path,) = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    config = DeidConfig.from_settings(["rtnLongModifDatesOpt"], None)
    pseudo = Pseudonymizer(b"a test secret of enough length", "k1")
    ids = pseudo.identifiers_for(PATIENT.patient_id, PATIENT.name)
    plain = deidentify(load_header(path), ids, pseudo, config).dataset.encode()  # type: ignore[union-attr]
    result, attributes = explain(load_header(path), ids, pseudo, config, values=True)
    assert result.dataset.encode() == plain  # type: ignore[union-attr]
    by_keyword = {a.keyword: a for a in attributes}
    name = by_keyword["PatientName"]
    assert (name.action, name.outcome, name.before) == ("pseudonym", "changed", PATIENT.name)
    assert name.after == ids.patient_name
    assert (by_keyword["InstitutionName"].code, by_keyword["InstitutionName"].outcome) == \
        ("X", "removed")
    assert by_keyword["StudyDate"].outcome == "changed"  # shifted
    assert by_keyword["Modality"].outcome == "kept"
    assert by_keyword["PatientIdentityRemoved"].outcome == "added"
    quiet = explain(load_header(path), ids, pseudo, config)[1]
    assert all(a.before is None and a.after is None for a in quiet)
