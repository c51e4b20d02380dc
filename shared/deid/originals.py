"""Original identifying values, and the search for them in an output.

The leak guard must find an original value wherever it went, yet not block a
series over coincidences. So: values shorter than three characters are
ignored; dates are compared as whole DA values (the date part of a DT); UIDs
as whole values of UI elements (a replacement UID is digits only, so free
text originals are never searched inside UIDs); names also by their
components, so "John Doe" in free text is found for DOE^JOHN. Times, codes
of numeric VRs and bulk binary data are not searched.

Text is compared folded (`text.fold`: NFKC, full case folding, accents and
vowel points dropped), so "Weiß" is found for WEISS. Name components are
found by script: in scripts that separate words (Latin, Greek, Cyrillic,
Arabic, Hebrew) as whole words, from two characters (Li, Wu, Xu, Ma); in
scripts without word boundaries (Han, kana, Hangul) as a substring, one
character included (王 in 患者王小明复查). Name particles (de, van, Dr) and
placeholders (ANONYMIZED) are not looked for on their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from functools import cache, lru_cache
from typing import Any

from pydicom.multival import MultiValue
from pydicom.uid import UID_dictionary

from ..dicom.vocabulary import FREE_TEXT_VRS
from .detectors import text_rules
from .text import (
    LETTER,
    SCRUBBED,
    fold,
    fold_mapped,
    name_components,
    replace_spans,
    script_of,
    unbounded,
)
from .values import DUMMY_BY_VR

MIN_LENGTH = 3
ARTICLE = "ال"  # the Arabic article, written onto a name: الهاشمي
SHORT_WORD = 2  # two-letter name components (Li, Wu, Xu, Ma): whole words only
# The relay's own dummies: input de-identified before holds them as its
# "originals", and they identify nobody; the same word in the output is the
# relay's, not the patient's. So are the guard's placeholders (REMOVED, ...).
PLACEHOLDERS = frozenset(fold(str(v)) for v in DUMMY_BY_VR.values()
                         if isinstance(v, str) and len(v) >= MIN_LENGTH)
PLACEHOLDER_DATES = frozenset(str(DUMMY_BY_VR[vr])[:8] for vr in ("DA", "DT"))
MAX_TEXT = 1024  # longer originals are free text; their fragments are found by the names
# Searched as whole texts; names (PN) by their components too.
PLAIN_TEXT_VRS = (FREE_TEXT_VRS - {"PN"}) | {"AE"}
Spans = Callable[[str], Iterable[tuple[int, int]]]
_DIGIT_RUN = re.compile(r"[0-9][0-9.]+")  # where a UID can be, in any text
_UID_CHARS = re.compile(r"[0-9][0-9.]+")


@cache
def _placeholders() -> frozenset[str]:
    return PLACEHOLDERS | text_rules().placeholders


class IdentifyingValues:
    """A set of original values (mergeable with `update`). Its repr shows
    counts only: these are the very values that must never be logged."""

    def __init__(self) -> None:
        self.texts: set[str] = set()  # folded whole values, found anywhere
        self.words: set[str] = set()  # folded name components, whole words
        self.short_words: set[str] = set()  # two-letter ones, whole words
        self.unbounded: set[str] = set()  # in Han, kana, Hangul: substrings
        self.dates: set[str] = set()
        self.uids: set[str] = set()
        self._uid_lengths: set[int] = set()  # of the UIDs made of digits and dots
        self._odd_uids: set[str] = set()  # the others, searched one by one
        self._matcher: _Matcher | None = None
        # Raw values already added: the instances of a series repeat the
        # same names, IDs and dates, and decoding them again changes nothing.
        self._raw_seen: set[tuple[Hashable, tuple[str, bytes]]] = set()

    def __repr__(self) -> str:
        return (f"IdentifyingValues(texts={len(self.texts)}, words={len(self.words)}"
                f"+{len(self.short_words)}+{len(self.unbounded)}, "
                f"dates={len(self.dates)}, uids={len(self.uids)})")

    def __len__(self) -> int:
        return (len(self.texts) + len(self.words) + len(self.short_words)
                + len(self.unbounded) + len(self.dates) + len(self.uids))

    def update(self, other: IdentifyingValues) -> None:
        self.texts |= other.texts
        self.words |= other.words
        self.short_words |= other.short_words
        self.unbounded |= other.unbounded
        self.dates |= other.dates
        self.uids |= other.uids
        self._uid_lengths |= other._uid_lengths
        self._odd_uids |= other._odd_uids
        self._raw_seen |= other._raw_seen
        self._matcher = None

    def add(self, vr: str, value: object) -> None:
        """Add the value of an element of VR `vr` (single or multi-valued)."""
        if value is None or value == "":
            return
        if isinstance(value, (list, tuple, MultiValue)):  # a PersonName iterates by character
            for one in value:
                self._add_one(vr, one)
        else:
            self._add_one(vr, value)

    def add_raw(self, elem: tuple[str, bytes], codec: Hashable,
                values: Callable[[tuple[str, bytes], Any], list[str]],
                known: IdentifyingValues | None = None) -> None:
        """Add an element given as (VR, bytes), decoded by `values` once:
        the same bytes met again (here or in `known`) are skipped."""
        key = (codec, elem)
        if key not in self._raw_seen and (known is None or key not in known._raw_seen):
            self._raw_seen.add(key)
            self.add(elem[0], values(elem, codec))

    def _add_one(self, vr: str, value: object) -> None:
        text = str(value).strip().rstrip("\x00").strip()
        if len(text) < MIN_LENGTH:
            return
        if vr == "UI":
            if text not in UID_dictionary:
                self.uids.add(text)
                if _UID_CHARS.fullmatch(text):
                    self._uid_lengths.add(len(text))
                else:
                    self._odd_uids.add(text)
        elif vr in ("DA", "DT"):
            if text[:8].isdigit() and len(text) >= 8 and text[:8] not in self.dates \
                    and text[:8] not in PLACEHOLDER_DATES:
                self.dates.add(text[:8])
                self._matcher = None
        elif vr == "PN":
            self.add_name(text)
        elif vr in PLAIN_TEXT_VRS and len(text) <= MAX_TEXT:
            folded = fold(text)
            if folded not in self.texts and folded not in _placeholders():
                self.texts.add(folded)
                self._matcher = None

    def add_name(self, name: str) -> None:
        rules, placeholders = text_rules(), _placeholders()
        full = fold(name).strip("^= ")
        if full in placeholders:
            return
        if len(full) >= MIN_LENGTH:
            self.texts.add(full)
        for part in name_components(name):
            if part in rules.name_particles or part in placeholders:
                continue
            if unbounded(part):
                self.unbounded.add(part)
            elif len(part) >= MIN_LENGTH:
                self.words.add(part)
                if script_of(part) == "arabic" and part.startswith(ARTICLE) \
                        and len(part) >= len(ARTICLE) + MIN_LENGTH:
                    # ل before the article contracts (للهاشمي), and the name
                    # is written without it too (هاشمي): the stem is the name.
                    self.words.add(part[len(ARTICLE):])
            elif len(part) == SHORT_WORD and part.isalpha():
                self.short_words.add(part)
        self._matcher = None

    def _parts(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """Found anywhere, whole words, two-letter whole words."""
        return (frozenset(self.texts | self.dates | self.unbounded), frozenset(self.words),
                frozenset(self.short_words))

    def _empty(self) -> bool:
        return not (self.texts or self.dates or self.words or self.short_words
                    or self.unbounded)

    def pattern(self) -> re.Pattern[str] | None:
        """One search for every text original (see `_compile`)."""
        matcher = self._matcher_now()
        return None if matcher is None else matcher.pattern

    def _matcher_now(self) -> _Matcher | None:
        """The same for every instance of a series, so built once per series."""
        if self._matcher is None and not self._empty():
            self._matcher = _compile(*self._parts())
        return self._matcher

    def search(self, text: str, also: IdentifyingValues | None = None) -> bool:
        """Whether free text holds any original (UIDs included), of these
        or of `also`."""
        matcher = self._matcher_with(also)
        if matcher is not None and matcher.search(fold(text)):
            return True
        return bool(self.uids_in(text, first=True) or (also and also.uids_in(text, first=True)))

    def scrub(self, text: str, also: IdentifyingValues | None = None,
              detect: Spans | None = None) -> str:
        """`text` with every original (of these or of `also`) replaced by
        SCRUBBED, and whatever `detect` finds in the folded text."""
        matcher = self._matcher_with(also)
        folded = fold(text)
        spans = _spans(folded, matcher, detect)
        if spans:  # folded piece by piece, a text folds to the same string (text.py)...
            mapped, where = fold_mapped(text)
            if mapped != folded:  # ...else what is found is found again where it maps
                spans = _spans(mapped, matcher, detect)
            text = replace_spans(text, spans, where)
        found = self.uids_in(text) | (also.uids_in(text) if also is not None else set())
        for uid in sorted(found, key=len, reverse=True):
            text = text.replace(uid, SCRUBBED)
        return text

    def _matcher_with(self, also: IdentifyingValues | None) -> _Matcher | None:
        """The matcher of the union, without copying `also` (which, for a
        series, holds every UID of every instance before)."""
        if also is None or also._empty():
            return self._matcher_now()
        if self._empty():
            return also._matcher_now()
        mine, theirs = self._parts(), also._parts()
        return _compile(mine[0] | theirs[0], mine[1] | theirs[1], mine[2] | theirs[2])

    def uids_in(self, text: str, first: bool = False) -> set[str]:
        """The original UIDs that occur in `text` (as substrings). A UID is
        digits and dots, so only runs of those are looked at, position by
        position for each length a UID has: the cost does not grow with the
        number of UIDs (a series of thousands of instances has thousands)."""
        found = {uid for uid in self._odd_uids if uid in text}
        if not self._uid_lengths or (found and first):
            return found
        uids, lengths = self.uids, sorted(self._uid_lengths)
        for run in _DIGIT_RUN.findall(text):
            size = len(run)
            if size < lengths[0]:
                continue
            for start in range(size - lengths[0] + 1):
                for length in lengths:
                    if start + length > size:
                        break
                    if run[start:start + length] in uids:
                        found.add(run[start:start + length])
                        if first:
                            return found
        return found


class _Matcher:
    """The regular expression that finds text originals in folded text, and
    a cheaper test in front of it. Python's `re` tries every alternative at
    every position, so a text with no original at all (the usual case) costs
    as much as one with several. Every match of the expression contains an
    original as a plain substring of the folded text; `str.__contains__`
    answers that fast, for each of the fewest originals that imply all
    others (a name's components before the name)."""

    def __init__(self, anywhere: frozenset[str], words: frozenset[str],
                 short_words: frozenset[str]):
        # Originals and text are compared with look-alike letters read as the
        # Latin letter they look like: one character for one, so the spans
        # found are the spans of the folded text.
        self.table = table = text_rules().skeleton
        anywhere, words, short_words = (frozenset(t.translate(table) for t in group)
                                        for group in (anywhere, words, short_words))
        self.pattern = _pattern(anywhere, words, short_words)
        candidates = sorted(anywhere | words | short_words, key=len)
        kept: list[str] = []
        for text in candidates:
            if not any(shorter in text for shorter in kept):
                kept.append(text)
        self.literals = tuple(kept)

    def search(self, folded: str) -> bool:
        return self._found_in(self.skeleton(folded))

    def spans(self, folded: str) -> list[tuple[int, int]]:
        text = self.skeleton(folded)  # translated once, for the search and the spans
        if not self._found_in(text):
            return []
        return [m.span() for m in self.pattern.finditer(text)]

    def _found_in(self, text: str) -> bool:
        if not any(literal in text for literal in self.literals):
            return False
        return self.pattern.search(text) is not None

    def skeleton(self, folded: str) -> str:
        """Look-alikes are never ASCII: most text needs no translation."""
        return folded if folded.isascii() else folded.translate(self.table)


def _spans(folded: str, matcher: _Matcher | None, detect: Spans | None
           ) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if matcher is not None:
        spans += matcher.spans(folded)
    if detect is not None:
        spans += detect(folded)
    return spans


@lru_cache(maxsize=32)
def _compile(anywhere: frozenset[str], words: frozenset[str],
             short_words: frozenset[str] = frozenset()) -> _Matcher:
    return _Matcher(anywhere, words, short_words)


def _pattern(anywhere: frozenset[str], words: frozenset[str],
             short_words: frozenset[str]) -> re.Pattern[str]:
    """Longest first, so a full name goes before its components. A name's
    edges are letters only (an underscore or a digit is an edge); a word of
    Arabic or Hebrew script may carry the proclitics of its script; a
    two-letter word must not touch a letter or a digit ("250mA" is no Ma)."""
    parts = [re.escape(p) for p in sorted(anywhere, key=len, reverse=True)]
    proclitics = text_rules().proclitics
    by_script: dict[str, list[str]] = {}
    for word in words:
        by_script.setdefault(script_of(word), []).append(word)
    for script, group in sorted(by_script.items()):
        before = f"(?:{proclitics[script]})?" if script in proclitics else ""
        parts.append(rf"(?<!{LETTER}){before}(?:{_alternatives(group)})(?!{LETTER})")
    if short_words:
        parts.append(rf"(?<![^\W_])(?:{_alternatives(short_words)})(?![^\W_])")
    return re.compile("|".join(parts))


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
