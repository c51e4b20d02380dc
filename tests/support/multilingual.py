"""Identifying values in the world's scripts, for tests that plant them.

Each person has the name as an original would carry it (a PN, groups split
by "=", components by "^") and the forms a person would write it in free
text: a component alone, in another case, another normalisation form, or
(for scripts without spaces) run into the surrounding words.
"""

# ruff: noqa: RUF001  (letters that look like Latin ones are the point of this file)
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    label: str
    original: str  # the PatientName of the original, as stored
    written: tuple[str, ...]  # how the name appears in a report: each must be found
    script_unbounded: bool = False  # written without spaces between words


PEOPLE = (
    Person("Latin with diacritics", "Müller-Lüdenscheidt^Zoë", ("Zoë", "MÜLLER", "Lüdenscheidt")),
    Person("German sharp s, stored upper case", "WEISS^JÜRGEN", ("Weiß", "Jürgen")),
    Person("German sharp s, written upper case", "Weiß^Jürgen", ("WEISS", "weiss")),
    Person("French accents", "Lefèvre^Hélène", ("Hélène", "LEFÈVRE")),
    Person("Polish", "Łukasiewicz^Bożena", ("Łukasiewicz", "BOŻENA")),
    Person("Turkish dotted I", "Yılmaz^Ayşe", ("Yılmaz", "Ayşe")),
    Person("Greek", "Παπαδόπουλος^Γιώργος", ("Παπαδόπουλος", "ΓΙΏΡΓΟΣ")),
    Person("Greek final sigma", "Νικολάου^Ελένη", ("ΝΙΚΟΛΆΟΥ", "Ελένη")),
    Person("Cyrillic", "Иванов^Пётр", ("Иванов", "ПЁТР")),
    Person("Ukrainian", "Шевченко^Тарас", ("Шевченко", "Тарас")),
    Person("Arabic", "الهاشمي^محمد", ("الهاشمي", "محمد")),
    Person("Hebrew", "כהן^דוד", ("כהן", "דוד")),
    Person("Chinese, one-character surname", "王^小明", ("王", "小明", "王小明"), True),
    Person("Chinese, one and one", "李^娜", ("李", "娜"), True),
    Person("Japanese, ideographic and phonetic groups", "Yamada^Taro=山田^太郎=やまだ^たろう",
           ("山田", "太郎", "やまだ", "Yamada"), True),
    Person("Korean", "김^민준", ("김", "민준", "김민준"), True),
    Person("Korean, two-syllable surname", "남궁^민", ("남궁", "민"), True),
    Person("Two-letter surname Li", "Li^Wei", ("Li", "WEI")),
    Person("Two-letter surname Wu", "WU^FANG", ("Wu",)),
    Person("Two-letter surname Xu", "Xu^Lin", ("XU", "Lin")),
    Person("Two-letter surname Ma", "Ma^Long", ("Ma", "Long")),
    Person("Full-width Latin", "ＳＭＩＴＨ^ＪＯＨＮ", ("Smith", "JOHN")),
    Person("Greek written without accents", "Γεωργίου^Μαρία", ("ΓΕΩΡΓΙΟΥ", "Μαρια")),
    Person("Russian ё written as е", "Королёв^Сергей", ("Королев", "СЕРГЕЙ")),
    Person("Two-letter surname in Cyrillic", "Ли^Вэй", ("Ли", "ВЭЙ")),
    Person("Arabic vowel signs in the original", "مُحَمَّد^عَلِيّ", ("محمد", "علي")),
    Person("Arabic elongation in the text", "سعيد^خالد", ("ســعيد", "خالد")),
    Person("Hebrew points in the text", "לוי^שרה", ("לֵוִי", "שָׂרָה")),
    Person("Hebrew two-letter surname", "כץ^משה", ("כץ", "משה")),
    Person("Chinese two-character surname", "欧阳^锋", ("欧阳", "锋", "欧阳锋"), True),
    Person("Japanese kana only", "さとう^はなこ", ("さとう", "はなこ"), True),
    Person("Half-width katakana", "ﾔﾏﾀﾞ^ﾀﾛｳ", ("ヤマダ", "ﾀﾛｳ"), True),
)


def sentence(person: Person, written: str) -> str:
    """`written` inside a sentence of the kind a report holds."""
    if person.script_unbounded and not written.isascii():
        return f"患者{written}复查，无异常。"
    return f"Reviewed with {written} today; no change."
