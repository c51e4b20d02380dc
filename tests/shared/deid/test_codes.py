"""Codes of local coding schemes leave as keyed pseudonyms, at any depth and
the same in every series; codes of standard schemes are untouched; every
code meaning is cleaned like free text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from relay_shared.deid import DeidConfig, DeidConfigError, Pseudonymizer, deidentify, parse_recipe
from relay_shared.guard import SeriesGuard
from relay_shared.settings import Settings

from .planting import PSEUDO, reread

ACCESSION = "ACC99118"


def code(value: str, scheme: str, meaning: str = "Procedure") -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def series(patient_id: str, procedure: Dataset, requested: Dataset | None = None) -> Dataset:
    """One instance of a series: a code in ProcedureCodeSequence, one in
    RequestedProcedureCodeSequence, the first again two levels down, as the
    purpose of a reference to an image."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "Doe^Jane", patient_id, ACCESSION
    ds.Modality = "CT"
    ds.ProcedureCodeSequence = Sequence([procedure])
    ds.RequestedProcedureCodeSequence = Sequence([requested or procedure])
    reference = Dataset()
    reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = \
        CTImageStorage, generate_uid()
    reference.PurposeOfReferenceCodeSequence = Sequence([procedure])
    ds.ReferencedImageSequence = Sequence([reference])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return reread(ds)


def deid(ds: Dataset, config: DeidConfig = DeidConfig(), pseudo: Pseudonymizer = PSEUDO
         ) -> Dataset:
    out = deidentify(ds, pseudo.identifiers_for(str(ds.PatientID)), pseudo, config).dataset
    assert isinstance(out, Dataset)
    return out


def codes(out: Dataset) -> tuple[str, str]:
    """The procedure's and the request's code values; the one at depth is the procedure's."""
    deep = out.ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0]
    assert deep.get("CodeValue") == out.ProcedureCodeSequence[0].get("CodeValue")
    return out.ProcedureCodeSequence[0].CodeValue, out.RequestedProcedureCodeSequence[0].CodeValue


@pytest.mark.parametrize("scheme", ["99HOSPX", "L", "99"])
def test_a_local_code_gets_the_same_pseudonym_in_every_series(scheme: str) -> None:
    local = f"CT-{ACCESSION}"
    first = deid(series("MRN-1", code(local, scheme)))
    second = deid(series("MRN-2", code(local, scheme)))
    pseudonym = PSEUDO.code(scheme, local)
    assert codes(first) == codes(second) == (pseudonym, pseudonym)
    assert ACCESSION not in pseudonym and len(pseudonym) <= 16  # an SH value
    other_key = deid(series("MRN-1", code(local, scheme)),
                     pseudo=Pseudonymizer(b"another-secret-0123456789"))
    assert codes(other_key)[0] != pseudonym  # keyed: nobody without the secret can match it
    assert PSEUDO.code("99OTHER", local) != pseudonym  # the scheme is part of the key


@pytest.mark.parametrize(("value", "scheme"), [("113100", "DCM"), ("77477000", "SCT"),
                                               ("36643-5", "LN"), ("RID10321", "RADLEX"),
                                               ("LA12345-6", "LNC")])
def test_codes_of_standard_schemes_are_untouched(value: str, scheme: str) -> None:
    assert codes(deid(series("MRN-1", code(value, scheme)))) == (value, value)


def test_the_site_names_more_local_schemes_in_the_settings_or_the_recipe(tmp_path: Path
                                                                         ) -> None:
    ds = series("MRN-1", code("ROOM4-CT", "HOSPX"), code("P123", "SITECODES"))
    assert codes(deid(ds)) == ("ROOM4-CT", "P123")
    settings = Settings(deid_local_coding_schemes="hospx, SITECODES")
    assert settings.deid_local_coding_schemes == ["hospx", "SITECODES"]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("local_codes:\n  schemes: [SITECODES]\n")
    for config in (DeidConfig.from_settings([], None, settings.deid_local_coding_schemes),
                   DeidConfig.from_settings([], str(recipe), ["HOSPX"])):
        assert codes(deid(ds, config)) == (PSEUDO.code("HOSPX", "ROOM4-CT"),
                                           PSEUDO.code("SITECODES", "P123"))


def test_a_recipe_keeps_the_codes_of_a_local_scheme_or_every_code() -> None:
    ds = series("MRN-1", code("CT-4711", "99PACS"), code("CT-4712", "99RIS"))
    keep_pacs = DeidConfig(recipe=parse_recipe("local_codes:\n  keep: [99pacs]\n"))
    assert codes(deid(ds, keep_pacs)) == ("CT-4711", PSEUDO.code("99RIS", "CT-4712"))
    keep_all = DeidConfig(recipe=parse_recipe("attributes:\n  CodeValue: keep\n"))
    assert codes(deid(ds, keep_all)) == ("CT-4711", "CT-4712")


def test_long_and_urn_code_values_of_a_local_scheme_are_pseudonymised() -> None:
    item = Dataset()
    item.LongCodeValue, item.CodingSchemeDesignator = f"LONG-CODE-FOR-{ACCESSION}", "99LOCAL"
    item.CodeMeaning = "Procedure"
    urn = Dataset()
    urn.URNCodeValue, urn.CodingSchemeDesignator = f"urn:hospx:{ACCESSION}", "L"
    urn.CodeMeaning = "Procedure"
    out = deid(series("MRN-1", item, urn))
    assert out.ProcedureCodeSequence[0].LongCodeValue == \
        PSEUDO.code("99LOCAL", f"LONG-CODE-FOR-{ACCESSION}")
    value = out.RequestedProcedureCodeSequence[0].URNCodeValue
    assert value.startswith("urn:uuid:") and ACCESSION not in value


def test_every_code_meaning_is_cleaned_like_free_text(tmp_path: Path) -> None:
    meaning = "CT for Doe, call +49 30 1234567"
    ds = series("MRN-1", code("77477000", "SCT", meaning), code("P1", "99LOCAL", meaning))
    out = deid(ds)
    requested = out.RequestedProcedureCodeSequence[0]
    assert out.ProcedureCodeSequence[0].CodeMeaning == requested.CodeMeaning == \
        "CT for ***, call ***"
    assert out.ProcedureCodeSequence[0].CodeValue == "77477000"
    guard = SeriesGuard()
    original, output = tmp_path / "original.dcm", tmp_path / "output.dcm"
    ds.save_as(original, enforce_file_format=True)
    out.save_as(output, enforce_file_format=True)
    guard.add_original(original)
    assert guard.check(output) == []


@pytest.mark.parametrize(("text", "error"), [
    ("local_codes:\n  schemez: [A]\n", "recipe:2: unknown key 'schemez' under local_codes"),
    ("local_codes:\n  keep: 99PACS\n", "recipe:2: local_codes keep must be a list"),
    ("local_codes:\n  schemes: [A, '']\n", "recipe:2: an empty coding scheme designator"),
])
def test_a_wrong_local_codes_section_names_its_line(text: str, error: str) -> None:
    with pytest.raises(DeidConfigError, match=re.escape(error)):
        parse_recipe(text)
