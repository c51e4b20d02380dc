"""The keyed pseudonymizer: one person, one pseudonym, one date shift."""

import re

import pytest

from relay_shared.deid import Pseudonymizer
from relay_shared.deid.pseudonyms import MAX_SHIFT_DAYS, normalise_name

from .planting import SECRET


@pytest.mark.parametrize("variant", ["MRN123", " mrn123 ", "Mrn123", "MRN123  "])
def test_case_and_spaces_do_not_make_another_patient(variant: str) -> None:
    pseudo = Pseudonymizer(SECRET)
    assert pseudo.identifiers_for(variant) == pseudo.identifiers_for("MRN123")


@pytest.mark.parametrize("variant", ["Doe^John", "DOE^JOHN^^", " doe ^ john ", "DOE^JOHN^"])
def test_names_are_normalised(variant: str) -> None:
    assert normalise_name(variant) == "DOE^JOHN"
    pseudo = Pseudonymizer(SECRET)
    assert pseudo.identifiers_for("", variant) == pseudo.identifiers_for("", "DOE^JOHN")


def test_the_id_decides_when_the_name_differs() -> None:
    pseudo = Pseudonymizer(SECRET)
    assert pseudo.identifiers_for("A1", "DOE^JANE") == pseudo.identifiers_for("A1", "SMITH^JANE")


def test_shift_is_never_zero_and_in_range() -> None:
    pseudo = Pseudonymizer(SECRET)
    shifts = {pseudo.identifiers_for(f"P{i}").date_shift_days for i in range(2000)}
    assert all(-MAX_SHIFT_DAYS <= s <= -1 for s in shifts)
    assert len(shifts) > 500


def test_another_secret_gives_other_pseudonyms_and_records_its_key() -> None:
    a = Pseudonymizer(SECRET, key_id="k1").identifiers_for("MRN123")
    b = Pseudonymizer(b"another-secret-987654321", key_id="k2").identifiers_for("MRN123")
    assert a.patient_id != b.patient_id
    assert (a.key_id, b.key_id) == ("k1", "k2")


def test_uids_are_valid_deterministic_and_distinct() -> None:
    pseudo = Pseudonymizer(SECRET)
    uid = pseudo.uid("1.2.3.4")
    assert re.fullmatch(r"2\.25\.(0|[1-9]\d*)", uid) and len(uid) <= 64
    assert uid == Pseudonymizer(SECRET).uid("1.2.3.4")
    assert uid != pseudo.uid("1.2.3.5")


def test_short_secret_refused_and_never_shown() -> None:
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")
    assert "secret" not in repr(Pseudonymizer(SECRET)).lower().replace("key_id", "")
