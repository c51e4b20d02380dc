"""What the guard looks for: the identifying values of a series' originals,
collected by its own walk of each original file, by the dictionary's VR.

An attribute of PS3.15 Table E.1-1 (at any depth, and the identifying file
meta) gives up its value unless an option in force keeps it: the value a
profile keeps in the clear is not a secret of the output. Names are always
identifying, wherever they are. Private elements give up names, dates, UIDs
and ID-like values unless safe private attributes are kept. Code strings and
whole code meanings of the originals form the series' vocabulary: a name that is
also a word of it ("HEAD", with BodyPartExamined HEAD) is looked for in person
names only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .rules import Rules
from .text import fold, name_components, script, unbounded, words
from .walk import BULK_LIMIT, Element, Selection

CODE_VRS = frozenset({"CS"})
DATE_VRS = frozenset({"DA", "DT"})
_DIGIT = re.compile(r"\d")
ARTICLE = "ال"  # the Arabic article, written onto a name


def date_part(text: str) -> str | None:
    """The YYYYMMDD of a DA or DT value, if it has one."""
    head = text.strip()[:8]
    return head if len(head) == 8 and head.isdigit() else None


def registry_uid(uid: str, rules: Rules) -> bool:
    return uid.startswith(rules.registry_roots)


class Originals:
    """The series' originals, in the guard's own form. Its repr shows counts only."""

    def __init__(self, rules: Rules, options: frozenset[str]):
        self.rules, self.options = rules, options
        # What an original can give up: the table's attributes, and wherever
        # they are names, UIDs, dates, code strings and private values.
        self.selection = Selection(
            skip_vrs=frozenset({"TM", "AS", "IS", "DS"}),
            tags=frozenset(rules.attributes) | rules.meta_identifying | rules.coded_tags
            | rules.vocabulary_tags,
            always_vrs=frozenset({"PN", "UI", "DA", "DT", "CS"}))
        self.values: set[str] = set()  # whole values, folded: IDs, addresses, full names
        self.words: set[str] = set()  # name components in scripts with word boundaries
        self.short_words: set[str] = set()  # two-letter components: Li, Wu, Xu, Ma
        self.unbounded: set[str] = set()  # name components in Han, kana, Hangul, Thai
        self.dates: set[str] = set()  # YYYYMMDD of identifying dates
        self.uids: set[str] = set()
        self.every_date: set[str] = set()  # every original date, for the shift check
        self.kept_dates: set[str] = set()  # dates an option keeps in the clear
        self.kept_values: set[str] = set()
        self.known_uids: set[str] = set()  # UIDs of attributes the profile keeps
        self.vocabulary: set[str] = set()  # words of codes and code meanings
        # Elements already taken in: the instances of a series repeat the same
        # names, IDs and dates, and taking them in again changes nothing.
        self._seen: set[tuple[int, str, bytes, tuple[str, ...]]] = set()

    def __repr__(self) -> str:
        return (f"Originals(values={len(self.values)}, names={len(self.words)}+"
                f"{len(self.short_words)}+{len(self.unbounded)}, dates={len(self.dates)}, "
                f"uids={len(self.uids)})")

    def add(self, elements: Iterable[Element]) -> None:
        safe_private = "rtnSafePrivOpt" in self.options
        seen = self._seen
        for element in elements:
            key = (element.tag, element.vr, element.value, element.encodings)
            if key in seen:
                continue
            seen.add(key)
            group = element.tag >> 16
            if group & 1:
                if not safe_private and element.tag & 0xFF00:
                    self._add_private(element)
                continue
            identifying, kept, cleaned = self._standing(element.tag, group)
            self._add_public(element, identifying, kept, cleaned)

    def _standing(self, tag: int, group: int) -> tuple[bool, bool, bool]:
        """Whether the attribute identifies, whether an option keeps its value,
        whether only what it holds counts, not its whole text: an option keeps
        it cleaned, or it is a description (removed because it may hold an
        identifier, not because it is one: "Brain", found again in a kept
        Position Reference Indicator, is no leak). Its names and dates are
        looked for through the attributes they come from."""
        attribute = self.rules.attribute(tag)
        if group == 2:
            if tag not in self.rules.meta_identifying:
                return False, False, False
            # The file meta's copy of the SOP Instance UID is kept with it under
            # rtnUIDsOpt: the table's options hold here too, or every series
            # kept so would be quarantined for its own retained UIDs.
            kept = attribute is not None and bool(attribute.keep & self.options)
            return not kept, kept, False
        if attribute is None:
            return False, False, False
        kept = bool(attribute.keep & self.options)
        return not kept, kept, attribute.description or bool(attribute.clean & self.options)

    def _add_public(self, element: Element, identifying: bool, kept: bool,
                    cleaned: bool) -> None:
        vr = element.vr
        if vr in ("UN", "OB", "OW", "SQ") and len(element.value) > BULK_LIMIT:
            return
        if self._add_typed(element, identifying, kept):
            return
        if vr in CODE_VRS or element.tag in self.rules.coded_tags \
                or element.tag in self.rules.vocabulary_tags:
            free_text = element.tag in self.rules.vocabulary_tags
            for text in element.texts():
                self.vocabulary.add(fold(text))
                if not free_text:  # a meaning gives its whole text, not its words:
                    self.vocabulary.update(words(text))  # "CT for Smith" is no code
            if identifying and not cleaned and vr not in CODE_VRS:
                self._add_values(element.texts())
        elif identifying and not cleaned and vr in self.rules.text_vrs | {"UN", "OB", "OW", "SQ"}:
            self._add_values(element.texts())
        elif kept:
            self.kept_values.update(fold(t) for t in element.texts())

    def _add_typed(self, element: Element, identifying: bool, kept: bool) -> bool:
        """Names, UIDs and dates, wherever they are; False for other VRs."""
        vr = element.vr
        if vr == "PN":
            for text in element.texts():
                self.add_name(text)
        elif vr == "UI":
            self._add_uids(element.texts(), identifying)
        elif vr in DATE_VRS:
            self._add_dates(element.texts(), identifying, kept)
        else:
            return False
        return True

    def _add_private(self, element: Element) -> None:
        if self._add_typed(element, True, False):
            return
        if len(element.value) <= self.rules.max_value_length:
            # A private text identifies when it looks like an ID: free of
            # a dictionary, the guard cannot tell a name from a parameter.
            self._add_values([t for t in element.texts() if _DIGIT.search(t)
                              and len(t) >= self.rules.substring_min])

    def _add_uids(self, texts: list[str], identifying: bool) -> None:
        for uid in texts:
            uid = uid.rstrip("\x00 ")
            if registry_uid(uid, self.rules):
                continue
            if not identifying:  # kept by the profile, whatever its length: DCMTK's "0"
                self.known_uids.add(uid)
            elif len(uid) >= self.rules.min_value_length:  # shorter: coincidences
                self.uids.add(uid)

    def _add_dates(self, texts: list[str], identifying: bool, kept: bool) -> None:
        for text in texts:
            day = date_part(text)
            if day is None:
                continue
            self.every_date.add(day)
            if kept:
                self.kept_dates.add(day)
            elif identifying:
                self.dates.add(day)

    def _add_values(self, texts: list[str]) -> None:
        rules = self.rules
        for text in texts:
            value = fold(text).strip()
            if rules.min_value_length <= len(value) <= rules.max_value_length \
                    and value not in rules.placeholders:
                self.values.add(value)

    def add_name(self, name: str) -> None:
        rules = self.rules
        full = fold(name).strip("^= ")
        if full in rules.placeholders:
            return
        if len(full) >= rules.min_value_length:
            self.values.add(full)
        for part in name_components(name):
            if part in rules.placeholders or part in rules.name_particles:
                continue
            if unbounded(part):
                if len(part) >= rules.unbounded_min:
                    self.unbounded.add(part)
            elif len(part) >= rules.word_min:
                self.words.add(part)
                stem = part[len(ARTICLE):]
                if script(part) == "arabic" and part.startswith(ARTICLE) \
                        and len(stem) >= rules.word_min:
                    # "الهاشمي" after ل is written "للهاشمي", and without the
                    # article as "هاشمي": the name is its stem as well.
                    self.words.add(stem)
            elif len(part) >= rules.short_word_min:
                self.short_words.add(part)

    def secret_dates(self) -> set[str]:
        """Identifying dates that no option shows in the clear anyway (a newborn
        imaged on its birth date, with full dates kept)."""
        return self.dates - self.kept_dates - self.rules.placeholder_dates
