"""Original identifying values, and the search for them in an output.

The leak guard must find an original value wherever it went, yet not block a
series over coincidences. So: values shorter than three characters are
ignored; dates are compared as whole DA values (the date part of a DT); UIDs
as whole values of UI elements (a replacement UID is digits only, so free
text originals are never searched inside UIDs); names also by their
components as whole words, so "John Doe" in free text is found for DOE^JOHN.
Times, codes of numeric VRs and bulk binary data are not searched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any

from pydicom.multival import MultiValue
from pydicom.uid import UID_dictionary

from ..dicom.vocabulary import FREE_TEXT_VRS
from .values import DUMMY_BY_VR

MIN_LENGTH = 3
# The relay's own dummies: input de-identified before holds them as its
# "originals", and they identify nobody; the same word in the output is the
# relay's, not the patient's.
PLACEHOLDERS = frozenset(str(v).upper() for v in DUMMY_BY_VR.values()
                         if isinstance(v, str) and len(v) >= MIN_LENGTH)
PLACEHOLDER_DATES = frozenset(str(DUMMY_BY_VR[vr])[:8] for vr in ("DA", "DT"))
MAX_TEXT = 1024  # longer originals are free text; their fragments are found by the names
# Searched as whole texts; names (PN) by their components too.
PLAIN_TEXT_VRS = (FREE_TEXT_VRS - {"PN"}) | {"AE"}
SCRUBBED = "***"
_NAME_SPLIT = re.compile(r"[\^=\s,]+")
_DIGIT_RUN = re.compile(r"[0-9][0-9.]+")  # where a UID can be, in any text
_UID_CHARS = re.compile(r"[0-9][0-9.]+")


class IdentifyingValues:
    """A set of original values (mergeable with `update`). Its repr shows
    counts only: these are the very values that must never be logged."""

    def __init__(self) -> None:
        self.texts: set[str] = set()
        self.words: set[str] = set()
        self.dates: set[str] = set()
        self.uids: set[str] = set()
        self._uid_lengths: set[int] = set()  # of the UIDs made of digits and dots
        self._odd_uids: set[str] = set()  # the others, searched one by one
        self._matcher: _Matcher | None = None
        # Raw values already added: the instances of a series repeat the
        # same names, IDs and dates, and decoding them again changes nothing.
        self._raw_seen: set[tuple[Hashable, tuple[str, bytes]]] = set()

    def __repr__(self) -> str:
        return (f"IdentifyingValues(texts={len(self.texts)}, words={len(self.words)}, "
                f"dates={len(self.dates)}, uids={len(self.uids)})")

    def __len__(self) -> int:
        return len(self.texts) + len(self.words) + len(self.dates) + len(self.uids)

    def update(self, other: IdentifyingValues) -> None:
        self.texts |= other.texts
        self.words |= other.words
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
        elif vr in PLAIN_TEXT_VRS and len(text) <= MAX_TEXT and text.upper() not in self.texts \
                and text.upper() not in PLACEHOLDERS:
            self.texts.add(text.upper())
            self._matcher = None

    def add_name(self, name: str) -> None:
        full = name.rstrip("^=").strip()
        if len(full) >= MIN_LENGTH and full.upper() not in PLACEHOLDERS:
            self.texts.add(full.upper())
        self.words.update(w.upper() for w in _NAME_SPLIT.split(full)
                          if len(w) >= MIN_LENGTH and w.upper() not in PLACEHOLDERS)
        self._matcher = None

    def pattern(self) -> re.Pattern[str] | None:
        """One search for every text original (see `_compile`)."""
        matcher = self._matcher_now()
        return None if matcher is None else matcher.pattern

    def _matcher_now(self) -> _Matcher | None:
        """The same for every instance of a series, so built once per series."""
        if self._matcher is None and (self.texts or self.dates or self.words):
            self._matcher = _compile(frozenset(self.texts | self.dates), frozenset(self.words))
        return self._matcher

    def search(self, text: str, also: IdentifyingValues | None = None) -> bool:
        """Whether free text holds any original (UIDs included), of these
        or of `also`."""
        matcher = self._matcher_with(also)
        if matcher is not None and matcher.search(text):
            return True
        return bool(self.uids_in(text, first=True) or (also and also.uids_in(text, first=True)))

    def scrub(self, text: str, also: IdentifyingValues | None = None) -> str:
        """`text` with every original (of these or of `also`) replaced by SCRUBBED."""
        matcher = self._matcher_with(also)
        if matcher is not None and matcher.search(text):
            text = matcher.pattern.sub(SCRUBBED, text)
        found = self.uids_in(text) | (also.uids_in(text) if also is not None else set())
        for uid in sorted(found, key=len, reverse=True):
            text = text.replace(uid, SCRUBBED)
        return text

    def _matcher_with(self, also: IdentifyingValues | None) -> _Matcher | None:
        """The matcher of the union, without copying `also` (which, for a
        series, holds every UID of every instance before)."""
        if also is None or not (also.texts or also.dates or also.words):
            return self._matcher_now()
        if not (self.texts or self.dates or self.words):
            return also._matcher_now()
        return _compile(frozenset(self.texts | self.dates | also.texts | also.dates),
                        frozenset(self.words | also.words))

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
    """The regular expression that finds text originals, and a cheaper test
    in front of it. Python's `re` tries every alternative at every position,
    so a text with no original at all (the usual case) costs as much as one
    with several. When text and originals are ASCII, the case-insensitive
    match implies that the upper-cased text contains the original as a plain
    substring; `str.__contains__` answers that fast, for each of the fewest
    originals that imply all others (a name's components before the name)."""

    def __init__(self, plain: frozenset[str], words: frozenset[str]):
        self.pattern = _pattern(plain, words)
        candidates = sorted(plain | words, key=len)
        kept: list[str] = []
        for text in candidates:
            if not any(shorter in text for shorter in kept):
                kept.append(text)
        self.literals = tuple(kept)
        self.ascii = all(text.isascii() for text in candidates)

    def search(self, text: str) -> bool:
        if self.ascii and text.isascii():
            upper = text.upper()
            if not any(literal in upper for literal in self.literals):
                return False
        return self.pattern.search(text) is not None


@lru_cache(maxsize=32)
def _compile(plain: frozenset[str], words: frozenset[str]) -> _Matcher:
    return _Matcher(plain, words)


def _pattern(plain: frozenset[str], words: frozenset[str]) -> re.Pattern[str]:
    """Longest first, so a full name goes before its components."""
    parts = [re.escape(p) for p in sorted(plain, key=len, reverse=True)]
    if words:
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        parts.append(rf"\b(?:{alternatives})\b")
    return re.compile("|".join(parts), re.IGNORECASE)
