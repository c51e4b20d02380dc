"""Region rules, then the OCR gate, on images with text drawn at known places."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from relay_shared.deid import DeidConfig, Pseudonymizer, deidentify
from relay_shared.deid.streamcopy import load_header
from relay_shared.pixels import PixelOutcome, PixelPolicy, load_rules
from tests.shared.pixels.drawing import UsSpec, us_image

PSEUDO = Pseudonymizer(b"pixel-gate-test-secret-0123")
CONFIG = DeidConfig.from_settings(["rtnLongModifDatesOpt"], None)
IDENTIFYING = {(4, 4): "CURIE MARIE", (4, 32): "MRN-4711"}
RULES = """version: "site-1"
regions:
  - name: acme-sonotest-banner
    when: {Modality: US, Manufacturer: "acme*", ManufacturerModelName: SonoTest 1}
    boxes: [[0, 0, 320, 60]]
    covers_text: true
"""

pytestmark = pytest.mark.usefixtures("tesseract")


@pytest.fixture(scope="module")
def tesseract() -> None:
    from relay_shared.pixels.ocr import OcrUnavailable, check_tesseract

    try:
        check_tesseract()
    except OcrUnavailable as exc:
        pytest.fail(f"{exc} (tests/support/install-system-deps.sh installs it)")


def _policy(tmp_path: Path, with_rule: bool = True, **kwargs: object) -> PixelPolicy:
    path = tmp_path / "site-rules.yaml"
    path.write_text(RULES)
    return PixelPolicy(load_rules(path if with_rule else None), **kwargs)  # type: ignore[arg-type]


def _run(tmp_path: Path, policy: PixelPolicy, spec: UsSpec) -> tuple[PixelOutcome, Path]:
    source = tmp_path / "in.dcm"
    us_image(spec).save_as(source, enforce_file_format=True)
    header = load_header(source)
    assessment = policy.assess(header)
    assert assessment.flagged
    ids = PSEUDO.identifiers_for(spec.patient_id)
    result = deidentify(header, ids, PSEUDO, CONFIG)
    target = tmp_path / "out.dcm"
    outcome = policy.process(assessment, source, target, result.dataset, result.originals, PSEUDO)
    return outcome, target


def test_a_region_rule_removes_the_name_and_the_gate_then_passes(tmp_path: Path) -> None:
    outcome, target = _run(tmp_path, _policy(tmp_path), UsSpec(texts=IDENTIFYING))
    assert (outcome.redacted, outcome.gate) == (True, "passed")
    assert "acme-sonotest-banner" in outcome.reason
    out = dcmread(target)
    assert out.BurnedInAnnotation == "NO"
    assert not out.pixel_array[0:60].any()
    assert "113101" in [c.CodeValue for c in out.DeidentificationMethodCodeSequence]


def test_the_new_sop_instance_uid_is_the_same_every_time(tmp_path: Path) -> None:
    spec = UsSpec(texts=IDENTIFYING, sop_uid="1.2.826.0.1.3680043.8.498.1")
    uids = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        _, target = _run(tmp_path / run, _policy(tmp_path / run), spec)
        uids.append(dcmread(target).SOPInstanceUID)
    assert uids[0] == uids[1] and uids[0] != PSEUDO.uid(spec.sop_uid)


def test_without_a_rule_the_gate_holds_an_image_that_shows_the_name(tmp_path: Path) -> None:
    outcome, target = _run(tmp_path, _policy(tmp_path, with_rule=False),
                           UsSpec(texts=IDENTIFYING))
    assert (outcome.redacted, outcome.held) == (False, True)
    assert "original name or identifier" in outcome.reason
    assert "CURIE" not in outcome.reason and "4711" not in outcome.reason
    assert dcmread(target).BurnedInAnnotation == "YES"  # kept for a person to review


def test_a_date_of_birth_written_another_way_is_held(tmp_path: Path) -> None:
    outcome, _ = _run(tmp_path, _policy(tmp_path, with_rule=False),
                      UsSpec(texts={(4, 100): "DOB 12.04.1961"}))
    assert outcome.held and "date" in outcome.reason


def test_text_that_identifies_no_one_passes_unless_any_text_is_held(tmp_path: Path) -> None:
    spec = UsSpec(texts={(4, 100): "LEFT KIDNEY 5 MHZ"})
    passed, _ = _run(tmp_path, _policy(tmp_path, with_rule=False), spec)
    assert passed.gate == "passed" and "none identifying" in passed.reason
    held, _ = _run(tmp_path, _policy(tmp_path, with_rule=False, any_text=True), spec)
    assert held.held and "legible word" in held.reason


def test_ocr_can_be_switched_off_for_a_modality(tmp_path: Path) -> None:
    policy = _policy(tmp_path, with_rule=False, ocr_off_modalities=frozenset({"US"}))
    outcome, _ = _run(tmp_path, policy, UsSpec(texts=IDENTIFYING))
    assert (outcome.gate, outcome.held) == ("off", False)
