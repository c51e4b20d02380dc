"""Names written into free text the way people and devices write them (see
tests/support/name_forms.py): the guard finds each in an output on its own,
and lets pass text that only shares a name's letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.name_forms import FOUND, KEPT

from .test_guard import findings, original, output_of


@pytest.mark.parametrize(("name", "text", "part"), FOUND, ids=[t for _, t, _ in FOUND])
def test_a_name_written_into_text_is_found(tmp_path: Path, name: str, text: str,
                                           part: str) -> None:
    source = original(name)
    assert findings(tmp_path, source, output_of(source, ImageComments=text)) == [
        "(0020,4000): an original value in free text"]


@pytest.mark.parametrize(("name", "text"), KEPT, ids=[t for _, t in KEPT])
def test_text_that_only_shares_letters_with_a_name_passes(tmp_path: Path, name: str,
                                                          text: str) -> None:
    source = original(name)
    assert findings(tmp_path, source, output_of(source, ImageComments=text)) == []
