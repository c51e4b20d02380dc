"""The leak guard on bytes finds what the leak guard on a Dataset finds, and
the shortcuts in front of the search never miss a hit."""

from __future__ import annotations

from io import BytesIO

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from relay_shared.deid import DeidConfig, IdentifyingValues, deidentify, find_leaks, parse_recipe
from relay_shared.deid.text import fold
from relay_shared.dicom.header import parse_file

from .planting import PSEUDO, reread
from .test_structure import base, private_dataset, three_deep


def as_header(ds: Dataset):
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return parse_file(buffer.getvalue())


def leaky() -> Dataset:
    """An output that keeps originals in free text, a nested UID, a date and a
    private element."""
    ds = three_deep()
    ds.PatientComments = "Mr John Doe prefers the morning"
    ds.ContentSequence[0].ContentSequence[0].ContentSequence[0].TextValue = "ref 1.2.999.1 ok"
    ds.AcquisitionDate = "20240105"
    block = ds.private_block(0x0011, "HOSPITAL PRIVATE 1", create=True)
    block.add_new(0x02, "LO", "MRN-4711")
    return ds


def test_both_guards_name_the_same_paths() -> None:
    originals = IdentifyingValues()
    originals.add_name("DOE^JOHN")
    originals.add("LO", "MRN-4711")
    originals.add("DA", "20240105")
    originals.add("UI", "1.2.999.1")
    ds = reread(leaky())
    expected = find_leaks(ds, originals)
    assert len(expected) >= 5
    assert find_leaks(as_header(ds), originals) == expected


def test_a_kept_free_text_is_caught_on_bytes_too() -> None:
    config = DeidConfig(recipe=parse_recipe("attributes:\n  PatientComments: keep\n"))
    ds = base()
    ds.PatientComments = "Mr John Doe prefers the morning"
    header = as_header(ds)
    out = deidentify(header, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config)
    assert find_leaks(out.dataset, out.originals) == ["(0010,4000)"]
    assert find_leaks(parse_file(out.dataset.encode()), out.originals) == ["(0010,4000)"]


def test_clean_outputs_are_clean_on_bytes_too() -> None:
    for make in (base, three_deep, private_dataset):
        header = as_header(make())
        out = deidentify(header, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, DeidConfig())
        assert find_leaks(parse_file(out.dataset.encode()), out.originals) == []


uid = st.lists(st.integers(0, 999), min_size=2, max_size=6).map(
    lambda parts: ".".join(map(str, parts)))
odd_uid = st.from_regex(r"[A-Z][A-Z0-9.]{2,8}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(uid | odd_uid, min_size=1, max_size=12), st.lists(uid, max_size=4),
       st.text(alphabet="0123456789. xAB", max_size=40))
def test_uids_are_found_as_substrings_like_a_plain_search(uids, inside, noise) -> None:
    originals = IdentifyingValues()
    for value in uids:
        originals.add("UI", value)
    text = noise + " ".join(inside) + noise
    naive = {u for u in originals.uids if u in text}
    assert originals.uids_in(text) == naive
    assert bool(originals.uids_in(text, first=True)) == bool(naive)


word = st.text(alphabet="abcdeXYZ^ \u00e9\u212a\u0131", min_size=3, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(word, min_size=1, max_size=5), st.lists(word, max_size=3),
       st.text(alphabet="abcdeXYZ^ ,.\u00e9\u212a\u0131K", max_size=60))
def test_the_quick_test_never_hides_a_match(names, texts, text) -> None:
    originals = IdentifyingValues()
    for name in names:
        originals.add("PN", name)
    for value in texts:
        originals.add("LO", value)
    pattern = originals.pattern()
    if pattern is None:
        return
    expected = bool(pattern.search(fold(text)))  # originals are matched folded
    assert originals.search(text) == (expected or bool(originals.uids_in(text)))
    assert not pattern.search(fold(originals.scrub(text)))


def test_nested_values_are_searched_on_bytes() -> None:
    inner = Dataset()
    inner.PersonName = "WATSON^EMMA"
    ds = base()
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].ContentSequence = Sequence([inner])
    originals = IdentifyingValues()
    originals.add("PN", "watson^emma")
    assert find_leaks(as_header(ds), originals) == [
        "(0008,1140)[0].(0040,A730)[0].(0040,A123)"]


def test_known_originals_scrub_later_instances_without_being_copied() -> None:
    config = DeidConfig(options=frozenset({"cleanDescOpt"}))
    first = deidentify(as_header(base()), PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config)
    known = first.originals
    sizes = len(known)
    later = base()
    later.PatientName = "ROE^RICHARD"
    later.SOPInstanceUID = later.file_meta.MediaStorageSOPInstanceUID = "1.2.999.2"
    later.ImageComments = "compare with John Doe, study 1.2.999.1"
    for header in (as_header(later), reread(later)):
        result = deidentify(header, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, config,
                            known=known)
        out = result.dataset if isinstance(result.dataset, Dataset) else \
            result.dataset.to_dataset()
        assert "DOE" not in out.ImageComments.upper()
        assert "1.2.999.1" not in out.ImageComments
        assert "doe^john" not in result.originals.texts  # already in known (folded)
        assert "roe^richard" in result.originals.texts
        assert "1.2.999.2" in result.originals.uids
        assert len(known) == sizes
