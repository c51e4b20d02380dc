"""How a name gets written into free text besides as a word of its own, for
the tests of the profile's scrubber and of the guard: joined by underscores,
with a digit on it, behind an Arabic or Hebrew proclitic, split by an
invisible character, spelt with letters of another script that look the same,
in full-width forms. Each row: the patient's name as stored, the text, and a
part of the name that must not be left (folded, as a reader would see it).

And what must stay: texts that hold a name's letters but not the name."""

# ruff: noqa: RUF001  (letters that look like Latin ones are the point of this file)
from __future__ import annotations

FOUND: list[tuple[str, str, str]] = [
    ("Okonkwo^Chidinma", "OKONKWO_CHIDINMA_HEAD", "okonkwo"),
    ("Okonkwo^Chidinma", "Head_Okonkwo", "okonkwo"),
    ("Okonkwo^Chidinma", "CHIDINMA_OKONKWO", "chidinma"),
    ("Doe^Jonathan", "Doe1 follow-up", "doe"),
    ("Doe^Jonathan", "seen 2x Jonathan2", "jonathan"),
    ("Li^Wei", "LI_WEI chest", "li"),
    ("حسن^محمد", "أرسل لمحمد", "محمد"),
    ("حسن^محمد", "تقرير ومحمد حسن", "محمد"),
    ("الهاشمي^خالد", "تقرير والهاشمي", "الهاشمي"),
    ("الهاشمي^خالد", "وبخالد", "خالد"),
    ("الهاشمي^خالد", "أرسل للهاشمي", "هاشمي"),  # ل + الهاشمي is written للهاشمي
    ("كريم^سعيد", "بالكريم", "كريم"),
    ("كريم^سعيد", "للكريم", "كريم"),
    ("כהן^דוד", "נשלח לדוד", "דוד"),
    ("כהן^דוד", "בדיקה של ודוד וכהן", "כהן"),
    ("כהן^דוד", "ולדוד", "דוד"),
    ("Janssen^Piet", "J\u0430nssen", "j\u0430nssen"),  # a Cyrillic a
    ("Janssen^Piet", "J\u0410NSSEN", "j\u0430nssen"),  # a Cyrillic capital A
    ("Janssen^Piet", "Jans\u200bsen", "janssen"),
    ("Janssen^Piet", "Jan\u00adssen", "janssen"),  # soft hyphen
    ("Janssen^Piet", "\u2066Janssen\u2069", "janssen"),
    ("Papas^Nikos", "\u03a1\u0391\u03a1\u0391S", "\u03c1\u03b1\u03c1\u03b1s"),  # Greek
    ("Doe^Janet", "ＪＡＮＥＴ＿ＤＯＥ", "janet"),
]

# (name, text): nothing may be cut from text.
KEPT: list[tuple[str, str]] = [
    ("Li^Wei", "Clinical history"),
    ("Li^Wei", "Li2 sequence"),  # two letters: whole words only, digits included
    ("Ma^Long", "120 kV 250mA"),
    ("Ma^Long", "longitudinal"),
    ("Okonkwo^Chidinma", "Okonkwos"),  # a longer word is another word
    ("לי^משה", "הספר שלי"),  # a two-letter name takes no proclitic: "שלי" is "mine"
    ("Smith^John", "Blacksmith"),
]
