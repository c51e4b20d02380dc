"""The operator's recipe: validated with line numbers, applied, and guarded."""

from pathlib import Path

import pytest

from relay_shared.deid import (
    DeidConfig,
    DeidConfigError,
    deidentify,
    find_leaks,
    identifying_values,
    parse_recipe,
)

from .planting import PSEUDO, reread
from .test_structure import base

GOOD = """\
version: "site-a-7"
attributes:
  StudyDescription: keep
  "(0008,0080)": {replace: "RESEARCH SITE"}
  OtherPatientIDs: hash
  AcquisitionDate: shift
  Manufacturer: remove
  PatientComments: blank
safe_private:
  - {group: 0x0029, creator: "SIEMENS CSA HEADER", element: 0x08}
"""


def test_a_good_recipe_loads_and_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(GOOD)
    config = DeidConfig.from_settings("rtnLongModifDatesOpt, cleanDescOpt", str(path))
    assert config.recipe is not None and config.recipe.version == "site-a-7"
    assert len(config.recipe.rules) == 6
    ds = base()
    ds.StudyDescription = "CT HEAD"
    ds.InstitutionName = "SAINT ELSEWHERE"
    ds.OtherPatientIDs = "OTHER-1"
    ds.AcquisitionDate = "20240105"
    ds.Manufacturer = "ACME"
    ds.PatientComments = "nervous"
    result = deidentify(reread(ds), PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config)
    out = result.dataset
    assert out.StudyDescription == "CT HEAD"
    assert out.InstitutionName == "RESEARCH SITE"
    assert out.OtherPatientIDs not in ("", "OTHER-1")
    assert out.AcquisitionDate != "20240105" and len(out.AcquisitionDate) == 8
    assert "Manufacturer" not in out
    assert out.PatientComments == ""
    assert result.audit["recipe"]["version"] == "site-a-7"
    assert "recipe site-a-7" in out.DeidentificationMethod


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("attributes:\n  StudyDescription: keep\n  NotAKeyword: keep\n", 3, "NotAKeyword"),
        ("attributes:\n  StudyDescription: smash\n", 2, "smash"),
        ("attributes:\n\n  \"(0008,ZZZZ)\": keep\n", 3, "(0008,ZZZZ)"),
        ("attributes:\n  PatientName: shift\n", 2, "cannot be shifted"),
        ("attributes:\n  \"(0009,1001)\": keep\n", 2, "safe_private"),
        ("version: 1\nattributes:\n  StudyDate: keep\n  StudyDate: remove\n", 4, "twice"),
        ("versions: 1\n", 1, "versions"),
        ("attributes: [\n", 2, "YAML"),
        ("safe_private:\n  - {group: 0x0010, creator: X, element: 1}\n", 2, "odd"),
    ],
)
def test_a_bad_recipe_names_its_line(text: str, line: int, words: str) -> None:
    with pytest.raises(DeidConfigError) as error:
        parse_recipe(text, source="recipe.yaml")
    assert f"recipe.yaml:{line}:" in str(error.value)
    assert words in str(error.value)


@pytest.mark.parametrize("options", ["rtnNothingOpt", ["rtnLongFullDatesOpt",
                                                        "rtnLongModifDatesOpt"]])
def test_bad_options_are_refused(options) -> None:
    with pytest.raises(DeidConfigError):
        DeidConfig.from_settings(options, None)


def test_the_leak_guard_catches_a_recipe_that_keeps_a_name_in_free_text() -> None:
    config = DeidConfig(recipe=parse_recipe("attributes:\n  PatientComments: keep\n"))
    ds = base()
    ds.PatientComments = "Mr John Doe prefers the morning"
    ds = reread(ds)
    originals = identifying_values(ds, config)
    out = deidentify(ds, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config)
    assert find_leaks(out.dataset, originals) == ["(0010,4000)"]
    assert find_leaks(out.dataset, out.originals) == ["(0010,4000)"]


def test_without_the_recipe_the_same_text_is_removed() -> None:
    ds = base()
    ds.PatientComments = "Mr John Doe prefers the morning"
    ds = reread(ds)
    out = deidentify(ds, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, DeidConfig())
    assert "PatientComments" not in out.dataset
    assert find_leaks(out.dataset, out.originals) == []
