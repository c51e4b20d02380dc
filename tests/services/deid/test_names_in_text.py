"""Names and numbers written into kept free text the way devices and people
write them, through the deid service: the profile cuts them from what it
keeps, and what a recipe keeps as it is the guard quarantines. Real SQLite,
real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from relay_shared.deid import DeidConfig
from relay_shared.models import Status
from tests.support.dicom_factory import Patient, SeriesSpec

from .test_false_positives import _run

# (patient name, what the device wrote into ManufacturerModelName (kept by the
# Basic Profile, its free text cleaned), what must not be left).
WRITTEN = [
    ("Okonkwo^Chidinma", "CHIDINMA_OKONKWO", ["OKONKWO", "CHIDINMA"]),
    ("Doe^Jonathan", "Doe1 Jonathan2", ["Doe", "Jonathan"]),
    ("حسن^محمد", "أرسل لمحمد", ["محمد"]),
    ("כהן^דוד", "נשלח לדוד וכהן", ["דוד", "כהן"]),
    ("Janssen^Piet", "J\u0430nssen Jans\u200bsen", ["J\u0430nssen", "Jans\u200bsen"]),
    ("Roe^Richard", "Rückruf 0171 2345678", ["0171 2345678"]),
    ("Roe^Richard", "DOB 03-Mar-1975", ["03-Mar-1975"]),
]


@pytest.mark.parametrize(("name", "text", "left"), WRITTEN, ids=[t for _, t, _ in WRITTEN])
def test_the_profile_cuts_what_a_device_wrote_into_kept_text(
        tmp_path: Path, name: str, text: str, left: list[str]) -> None:
    spec = SeriesSpec(Patient("MRN-NAMES-1", name), instances=2)
    series, outputs = _run(tmp_path, spec, SpecificCharacterSet="ISO_IR 192",
                           PatientName=name, ManufacturerModelName=text)
    assert series.status is Status.DONEPROCESSING, series.error
    for output in outputs:
        kept = str(dcmread(output).get("ManufacturerModelName", ""))
        assert "***" in kept
        for value in left:
            assert value not in kept and value.lower() not in kept.lower()


@pytest.mark.parametrize(("name", "text"), [
    ("Okonkwo^Chidinma", "seen OKONKWO_CHIDINMA"),
    ("حسن^محمد", "أرسل لمحمد"),
    ("Janssen^Piet", "Jans\u200bsen"),
    ("Roe^Richard", "call 020 7946 0958"),
], ids=["underscore", "proclitic", "zero-width", "phone"])
def test_what_a_recipe_keeps_as_it_is_is_quarantined(tmp_path: Path, name: str,
                                                     text: str) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "keeps the model"\nattributes:\n  ManufacturerModelName: keep\n')
    spec = SeriesSpec(Patient("MRN-NAMES-2", name), instances=1)
    series, _ = _run(tmp_path, spec, DeidConfig.from_settings(["rtnLongModifDatesOpt"],
                                                               str(recipe)),
                     SpecificCharacterSet="ISO_IR 192", PatientName=name,
                     ManufacturerModelName=text)
    assert series.status is Status.QUARANTINED
    assert "(0008,1090)" in (series.error or ""), series.error


def test_the_same_text_without_the_name_goes_on(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "keeps the model"\nattributes:\n  ManufacturerModelName: keep\n')
    spec = SeriesSpec(Patient("MRN-NAMES-3", "Okonkwo^Chidinma"), instances=1)
    series, _ = _run(tmp_path, spec, DeidConfig.from_settings(["rtnLongModifDatesOpt"],
                                                               str(recipe)),
                     ManufacturerModelName="HEAD_ROUTINE 120kV 010 120 250")
    assert series.status is Status.DONEPROCESSING, series.error
