"""The profile's folding of text: a text folds piece by piece as it folds
whole, so a match in folded text maps back onto whole characters."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from relay_shared.deid.detectors import detected_spans
from relay_shared.deid.text import SCRUBBED, fold, fold_mapped, replace_spans

# Letters of every script the relay meets, with the marks that may follow them.
ALPHABET = ("aZß ÉéİıŁ ΣσςΆ ЁёЙ محمدـ\u064e\u0651 דוד\u05b8\u05bc 王小明 やまだﾔﾏﾀﾞ "
            "김민준\u1100\u1161\u11a8 \uff33\uff2d\uff29 ﬁ \u0301\u0308 \u200b\u00ad\u2066\ufe0f")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_a_text_folds_piece_by_piece_as_it_folds_whole(text: str) -> None:
    folded, where = fold_mapped(text)
    assert folded == fold(text)
    if where is not None:
        assert len(where) == len(folded) + 1 and where == sorted(where)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=20), st.text(alphabet=ALPHABET, max_size=20),
       st.sampled_from(["Weiß", "ΝΙΚΟΛΆΟΥ", "مُحَمَّد", "ﾔﾏﾀﾞ", "Zoë", "김민준"]))
def test_a_match_in_folded_text_is_replaced_whole(before: str, after: str, name: str) -> None:
    text = before + name + after
    folded, where = fold_mapped(text)
    start = folded.index(fold(name), len(fold(before)))
    scrubbed = replace_spans(text, [(start, start + len(fold(name)))], where)
    rest = scrubbed[len(before):]  # the name went, with any mark that followed it
    assert scrubbed.startswith(before) and rest.startswith(SCRUBBED)
    assert after.endswith(rest[len(SCRUBBED):])


def test_marks_and_forms_a_writer_may_leave_out_fold_away() -> None:
    assert fold("WEISS") == fold("Weiß") == "weiss"
    assert fold("مُحَمَّد") == fold("محـمد") == "محمد"
    assert fold("דָּוִד") == "דוד"
    assert fold("ﾔﾏﾀﾞ") == "ヤマダ"
    assert fold(unicodedata.normalize("NFD", "김민준")) == "김민준"


def test_the_detectors_read_dates_only_when_asked() -> None:
    text = fold("Seen 12 March 2019, call +49 30 12345678")
    assert len(detected_spans(text)) == 2
    assert len(detected_spans(text, dates=False)) == 1


def test_the_detectors_read_domestic_numbers_and_abbreviated_months() -> None:
    for text in ("call 0171 2345678", "ph 020 7946 0958", "DOB 03-Mar-1975", "3-Mar-75"):
        assert len(detected_spans(fold(text))) == 1, text
    for text in ("Series 010 120 250", "kV 080 100 120 140", "T1-Mar-T2", "Dose 0120 1500"):
        assert detected_spans(fold(text)) == [], text
