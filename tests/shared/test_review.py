"""Which series wait for review, and what a reviewer is shown of an instance."""

from __future__ import annotations

from pydicom.dataset import Dataset

from relay_shared.deid import Pseudonymizer
from relay_shared.review import ReviewChoice, ReviewMode
from relay_shared.review_attributes import attributes_left, changed_values, with_before

KEYS = [f"2.25.{n}" for n in range(4000)]


def _chosen(choice: ReviewChoice, secret: bytes) -> set[str]:
    keyed = Pseudonymizer(secret).text
    return {key for key in KEYS if choice.selects(key, keyed)}


def test_all_and_off_take_every_series_and_none() -> None:
    keyed = Pseudonymizer(b"review-test-secret-1").text
    assert all(ReviewChoice(ReviewMode.ALL).selects(k, keyed) for k in KEYS[:50])
    assert not any(ReviewChoice(ReviewMode.OFF).selects(k, keyed) for k in KEYS[:50])


def test_a_sample_is_about_one_in_n_and_the_same_series_every_time() -> None:
    choice = ReviewChoice(ReviewMode.SAMPLE, one_in=20)
    first = _chosen(choice, b"review-test-secret-1")
    assert 140 <= len(first) <= 260  # 200 expected of 4000
    assert _chosen(choice, b"review-test-secret-1") == first  # a retry decides alike
    # Keyed: another site's key draws another sample, so the draw cannot be predicted.
    other = _chosen(choice, b"review-test-secret-2")
    assert len(first & other) < len(first) / 2
    assert _chosen(ReviewChoice(ReviewMode.SAMPLE, one_in=1), b"review-test-secret-1") \
        == set(KEYS)


def _instance() -> Dataset:
    ds = Dataset()
    ds.PatientName = "PSEUDONYM^ABC"
    ds.PatientID = "PSN123"
    ds.StudyDate = "20240101"
    ds.Modality = "CT"
    ds.PatientIdentityRemoved = "YES"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "2.25.42"
    ds.ReferencedImageSequence = [ref]
    return ds


AUDIT = {"replaced": ["(0010,0010)", "(0010,0020)", "(0008,1155)"], "shifted": ["(0008,0020)"],
         "removed": ["(0010,1000)"], "emptied": [], "cleaned": []}


def test_every_attribute_left_is_listed_with_the_action_that_made_it() -> None:
    rows = {row.path: row for row in attributes_left(_instance(), AUDIT)}
    assert rows["(0010,0010)"].action == "replaced"
    assert rows["(0010,0010)"].value == "PSEUDONYM^ABC"
    assert rows["(0008,0020)"].action == "date shifted"
    assert rows["(0008,0060)"].action == "kept"
    assert rows["(0012,0062)"].action == "added by the relay"
    assert rows["(0008,1140)"].value == "sequence of 1 item(s)"
    assert rows["(0008,1140)[0].(0008,1155)"].action == "replaced"
    assert all(row.before is None for row in rows.values())


def test_what_is_inside_a_sequence_the_relay_added_is_added_too() -> None:
    ds = _instance()
    code = Dataset()
    code.CodeValue = "113100"
    ds.DeidentificationMethodCodeSequence = [code]
    rows = {row.path: row for row in attributes_left(ds, AUDIT)}
    assert rows["(0012,0064)"].action == "added by the relay"
    assert rows["(0012,0064)[0].(0008,0100)"].action == "added by the relay"


def test_an_admin_sees_each_value_before_and_what_was_removed() -> None:
    original = Dataset()
    original.PatientName = "Lovelace^Ada"
    original.PatientID = "MRN-1001"
    original.OtherPatientIDs = "OLD-7"
    original.StudyDate = "20240315"
    original.Modality = "CT"
    before = changed_values(original, AUDIT | {"removed": ["(0010,1000)"]})
    assert before == {"(0010,0010)": "Lovelace^Ada", "(0010,0020)": "MRN-1001",
                      "(0010,1000)": "OLD-7", "(0008,0020)": "20240315"}
    rows = {r.path: r for r in with_before(attributes_left(_instance(), AUDIT), before)}
    assert rows["(0010,0010)"].before == "Lovelace^Ada"
    assert rows["(0008,0060)"].before is None  # kept: nothing to compare
    removed = rows["(0010,1000)"]
    assert (removed.action, removed.keyword, removed.value, removed.before) == \
        ("removed", "OtherPatientIDs", "", "OLD-7")
