"""Names written into free text the way people and devices write them (see
tests/support/name_forms.py): the guard finds each in an output on its own,
and lets pass text that only shares a name's letters."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import BasicTextSRStorage

from tests.support.multilingual import PEOPLE, Person, Planting, contexts
from tests.support.name_forms import FOUND, KEPT

from .test_guard import PLACES, findings, original, output_of


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


# Every name of the multilingual set in every context but the plain sentence
# (test_guard plants that in every place), in a few places of each kind.
CONTEXTS = [(person, planting, place) for person in PEOPLE for written in person.written
            for planting in contexts(person, written) if planting.label != "sentence"
            for place in ("ImageComments", "SR nested TEXT", "private LO")]


@pytest.mark.parametrize(("person", "planting", "place"), CONTEXTS,
                         ids=[f"{p.label}-{w.value}-{w.label}-{place}"
                              for p, w, place in CONTEXTS])
def test_a_name_in_any_context_is_found(tmp_path: Path, person: Person, planting: Planting,
                                        place: str) -> None:
    source = original(person.original)
    out = output_of(source, SOPClassUID=BasicTextSRStorage)
    path, plant = PLACES[place]
    plant(out, planting.text)
    found = findings(tmp_path, source, out)
    assert any(f.startswith(path + ":") for f in found), found
