"""Identifying values in the world's scripts, for tests that plant them.

Each person has the name as an original would carry it (a PN, groups split
by "=", components by "^") and the forms a person would write it in free
text: a component alone, in another case, another normalisation form, or
(for scripts without spaces) run into the surrounding words. `contexts`
writes each form into text as people and devices do: in a sentence, joined
by underscores, with a digit on it, behind an Arabic or Hebrew proclitic,
split by a zero-width space, with look-alike letters of another script.
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


# Cyrillic letters that look like Latin ones: a name spelt with them reads the same.
LOOKALIKE = str.maketrans("aeopcxyiAEOPCXYHKMTB", "аеорсхуіАЕОРСХУНКМТВ")
ARABIC_LETTERS = range(0x0600, 0x0700)
HEBREW_LETTERS = range(0x0590, 0x0600)


@dataclass(frozen=True)
class Planting:
    label: str
    text: str  # what is written into the file
    value: str  # what must not be left in the output, as it was written


def contexts(person: Person, written: str) -> list[Planting]:
    """`written` in every context it may come in. Two-letter components only
    where they stand as words of their own (an underscore is an edge, a digit
    or a proclitic is not: "Li2", "שלי"); names in scripts without spaces are
    run into the text anyway."""
    found = [Planting("sentence", sentence(person, written), written)]
    if person.script_unbounded and not written.isascii():
        return found
    found.append(Planting("underscores", f"CT_{written}_HEAD", written))
    letters = [c for c in written if c.isalpha()]
    if len(letters) >= 3:
        found.append(Planting("digit", f"{written}2 follow-up", written))
        middle = len(written) // 2
        found.append(Planting("zero-width", f"seen {written[:middle]}\u200b{written[middle:]}",
                              written))
        if ord(letters[0]) in ARABIC_LETTERS:
            found.append(Planting("proclitic", f"تقرير و{written}", written))
            if written.startswith("ال"):  # ل + ال contracts: للهاشمي
                found.append(Planting("proclitic", f"أرسل لل{written[2:]}", written[2:]))
            else:
                found.append(Planting("proclitic", f"أرسل ل{written}", written))
        if ord(letters[0]) in HEBREW_LETTERS:
            found.append(Planting("proclitic", f"נשלח ל{written}", written))
            found.append(Planting("proclitic", f"של ו{written}", written))
    lookalike = written.translate(LOOKALIKE)
    if lookalike != written:
        found.append(Planting("look-alike", f"Reviewed with {lookalike} today", lookalike))
    return found
