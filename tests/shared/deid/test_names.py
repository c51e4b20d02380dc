"""Names written into free text the way people and devices write them (see
tests/support/name_forms.py): the profile's scrubber cuts each, characters
and all, and leaves text that only shares a name's letters."""

from __future__ import annotations

import pytest

from relay_shared.deid import IdentifyingValues
from relay_shared.deid.text import SCRUBBED, fold
from tests.support.name_forms import FOUND, KEPT


def _values(name: str) -> IdentifyingValues:
    values = IdentifyingValues()
    values.add("PN", name)
    return values


@pytest.mark.parametrize(("name", "text", "part"), FOUND, ids=[t for _, t, _ in FOUND])
def test_a_name_written_into_text_is_cut(name: str, text: str, part: str) -> None:
    values = _values(name)
    assert values.search(text)
    scrubbed = values.scrub(text)
    assert SCRUBBED in scrubbed
    assert part not in fold(scrubbed).replace("\u200b", ""), scrubbed


@pytest.mark.parametrize(("name", "text"), KEPT, ids=[t for _, t in KEPT])
def test_text_that_only_shares_letters_with_a_name_is_kept(name: str, text: str) -> None:
    values = _values(name)
    assert not values.search(text)
    assert values.scrub(text) == text


def test_an_invisible_character_goes_with_the_name_it_splits() -> None:
    assert _values("Janssen^Piet").scrub("Dr Jans\u200bsen, ward 3") == f"Dr {SCRUBBED}, ward 3"
    assert _values("Doe^Jane").scrub("Jane\u200b Doe") == f"{SCRUBBED} {SCRUBBED}"
