"""The planted-value corpus by class (SR text, local codes, names in every
script) through the engine under the default options and with descriptions
and structured content kept cleaned: no planted value is left, and the guard,
judging each output on its own, finds nothing."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread

from relay_shared.deid import DeidConfig, deidentify
from relay_shared.dicom.header import parse_file
from relay_shared.guard import SeriesGuard

from .planting import PSEUDO, Planted, output_text, planted_corpus, survivors

CORPUS = planted_corpus()
CONFIGS = {
    "default": frozenset({"rtnLongModifDatesOpt"}),
    "cleaned": frozenset({"rtnLongModifDatesOpt", "cleanDescOpt", "cleanStructContOpt"}),
}


def test_the_corpus_has_every_class() -> None:
    assert {case.kind for case in CORPUS} == {"SR text", "local codes", "scripts"}


@pytest.mark.parametrize("options", sorted(CONFIGS))
@pytest.mark.parametrize("case", CORPUS, ids=[f"{c.kind}-{c.label}" for c in CORPUS])
def test_no_planted_value_is_left(tmp_path: Path, case: Planted, options: str) -> None:
    original = tmp_path / "original.dcm"
    case.dataset.save_as(original, enforce_file_format=True)
    assert survivors(output_text(dcmread(original)), case.values) == list(case.values)
    config = DeidConfig(options=CONFIGS[options])
    ids = PSEUDO.identifiers_for(str(case.dataset.PatientID))
    result = deidentify(parse_file(original.read_bytes()), ids, PSEUDO, config)
    output = tmp_path / "output.dcm"
    output.write_bytes(result.dataset.encode())
    assert survivors(output_text(dcmread(BytesIO(output.read_bytes()))), case.values) == []
    guard = SeriesGuard(config.options, ids.date_shift_days)
    guard.add_original(original)
    assert [str(f) for f in guard.check(output)] == []
