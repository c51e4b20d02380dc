"""The rules file: built-in and operator's, checked with the line of each mistake;
which images are flagged, and which rules apply, read the same from either header kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage

from relay_shared.deid.streamcopy import load_header
from relay_shared.pixels import PixelPolicy, PixelRulesError, load_rules
from relay_shared.settings import load_settings
from tests.shared.pixels.drawing import UsSpec, us_image

SITE = """version: "site-2"
flag:
  modalities: [MG]
  devices:
    - {Manufacturer: "Frame Grabber*"}
regions:
  - name: acme-640
    when: {Manufacturer: ACME*, Rows: [160, 480], ImageType: "*SECONDARY*"}
    boxes: [[0, 0, 320, 30], [0, 130, 50, 30]]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_the_builtin_rules_load_and_an_operator_file_extends_them(tmp_path: Path) -> None:
    builtin = load_rules()
    rules = load_rules(_write(tmp_path, SITE))
    assert rules.version == f"{builtin.version}+site-2"
    assert {"US", "MG"} <= rules.modalities
    assert [r.name for r in rules.regions][-1] == "acme-640"
    assert rules.regions[-1].source.endswith("rules.yaml:7")


@pytest.mark.parametrize(("text", "message"), [
    ("version: x\nregions:\n  - name: a\n    when: {Modality: US}\n    boxes: [[0, 0, 10]]\n",
     ":3: rule 'a': a box is"),
    ("version: x\nregions:\n  - name: a\n    when: {Modalty: US}\n    boxes: [[0, 0, 1, 1]]\n",
     ":4: 'Modalty' is not a DICOM keyword"),
    ("version: x\nregions:\n  - name: a\n    when: {Modality: US}\n    boxes: [[0, 0, 1, 1]]\n"
     "  - name: a\n    when: {Modality: US}\n    boxes: [[0, 0, 1, 1]]\n", ":6: rule name 'a'"),
    ("version: x\nflag:\n  colours: [red]\n", ":3: unknown key(s) colours"),
    ("regions: []\n", "`version` is required"),
    ("version: x\nregions: [\n", "not valid YAML"),
])
def test_a_mistake_is_reported_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PixelRulesError, match=r"rules\.yaml") as caught:
        load_rules(_write(tmp_path, text))
    assert message in str(caught.value)


def test_settings_name_the_rules_file_and_the_policy_checks_it_at_start(tmp_path: Path) -> None:
    bad = _write(tmp_path, "version: x\nregions:\n  - name: a\n")
    settings = load_settings(pixel_rules=bad, pixel_ocr=False,
                             pixel_ocr_off_modalities="us, sc")
    assert settings.pixel_ocr_off_modalities == ["us", "sc"]
    with pytest.raises(PixelRulesError, match=r":3: rule .a. needs"):
        PixelPolicy.from_settings(settings)


@pytest.mark.parametrize(("change", "reason"), [
    ({}, "BurnedInAnnotation is YES"),
    ({"BurnedInAnnotation": "NO"}, "modality US"),
    ({"BurnedInAnnotation": "NO", "Modality": "CT"}, "SOP class"),
    ({"BurnedInAnnotation": "NO", "Modality": "CT", "SOPClassUID": CTImageStorage,
      "ImageType": ["DERIVED", "SECONDARY"]}, "ImageType DERIVED"),
    ({"BurnedInAnnotation": "NO", "Modality": "CT", "SOPClassUID": CTImageStorage,
      "Manufacturer": "Frame Grabber Inc"}, "device listed"),
    ({"BurnedInAnnotation": "NO", "Modality": "CT", "SOPClassUID": CTImageStorage}, None),
])
def test_why_an_image_may_hold_text(tmp_path: Path, change: dict, reason: str | None) -> None:
    policy = PixelPolicy(load_rules(_write(tmp_path, SITE)), ocr=False)
    ds = us_image(UsSpec())
    for keyword, value in change.items():
        setattr(ds, keyword, value)
    path = tmp_path / "im.dcm"
    ds.save_as(path, enforce_file_format=True)
    for header in (load_header(path), ds):
        found = policy.assess(header).reason
        assert (found is None) if reason is None else (reason in (found or ""))


def test_a_rule_applies_when_all_its_conditions_hold(tmp_path: Path) -> None:
    policy = PixelPolicy(load_rules(_write(tmp_path, SITE)), ocr=False)
    ds = us_image(UsSpec())  # 160 rows, ACME Medical
    ds.ImageType = ["DERIVED", "SECONDARY"]
    path = tmp_path / "im.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert [r.name for r in policy.assess(load_header(path)).rules] == ["acme-640"]
    ds.Rows = 200
    assert policy.assess(ds).rules == ()
