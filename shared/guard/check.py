"""The check of one output against the series' originals and the detectors.

Where a match counts depends on the field, by the dictionary's VR:
- person names (PN): every original, the series' code words included;
- free text (LO, SH, LT, ST, UT, UC, AE, UR, private and UN values): every
  original but the code words; then the detectors (dates, phone numbers,
  e-mail addresses, national IDs);
- codes (CodeValue and its kin): whole values and name words, no detectors;
- UIDs (UI): an original is refused, and so is any UID the relay did not
  mint and no registry issued;
- dates (DA, DT): an original date is refused, unless it is the shifted
  value of an original (a shift may land on another original date).
Code strings (CS), numbers, times and pixel data are not searched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from .originals import DATE_VRS, Originals, date_part, registry_uid
from .rules import Rules
from .text import LETTER, fold, script, unbounded
from .walk import BULK_LIMIT, Element, Selection

_UID_RUN = re.compile(r"\d+(?:\.\d+){3,}")
JUDGED_LIMIT = 200_000
# What an output is searched in: not code strings, times, ages, numbers (see above).
OUTPUT_SELECTION = Selection(skip_vrs=frozenset({"CS", "TM", "AS", "IS", "DS"}))
BINARY_VRS = frozenset({"UN", "OB", "OW", "SQ"})
DETECTOR_REASONS = {"dates": "a date in free text", "phones": "a phone number in free text",
                    "emails": "an e-mail address in free text",
                    "national_ids": "an ID-like number in free text"}


@dataclass(frozen=True)
class Finding:
    """Where, and which rule: never the value found."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def minted(uid: str, rules: Rules) -> bool:
    """A UID as the relay mints it: the root, then a 128-bit integer laid out
    as an RFC 9562 version 8 UUID (version nibble 8, variant bits 10)."""
    digits = uid[len(rules.minted_root):]
    if not uid.startswith(rules.minted_root) or not digits.isdigit() or \
            (digits[0] == "0" and digits != "0") or len(digits) > 39:
        return False
    number = int(digits)
    if number >= 1 << 128:
        return False
    raw = number.to_bytes(16, "big")
    return raw[6] >> 4 == 8 and raw[8] >> 6 == 2


class Matchers:
    """The series' originals compiled once, for the three kinds of field."""

    def __init__(self, originals: Originals, date_shift_days: int | None):
        self.originals = originals
        rules = originals.rules
        weak = originals.vocabulary
        values = originals.values - originals.kept_values
        long_values = {v for v in values if len(v) >= rules.substring_min or unbounded(v)}
        tokens = values - long_values
        words, short = originals.words, originals.short_words
        self.table = rules.lookalikes
        build = _Patterns(rules)
        self.names = build(tokens | short, words, long_values | originals.unbounded)
        self.text = build((tokens | short) - weak, words - weak,
                          (long_values | originals.unbounded) - weak)
        self.codes = build(tokens - weak, words - weak, long_values - weak)
        self.dates = originals.secret_dates()
        self.shifted = _shifted(originals.every_date, date_shift_days)
        # With full dates kept, a date in text is no more than the dates beside it.
        self.dates_in_text = "rtnLongFullDatesOpt" not in originals.options
        # The outputs of a series repeat most values: each is judged once.
        self.judged: dict[tuple[int, str, bytes, tuple[str, ...]], str | None] = {}

        self.uid_pieces = frozenset(originals.uids)


class _Patterns:
    """One search for a field's originals, longest first so that a name is
    found before its parts. Originals and text are compared with look-alike
    letters read as the Latin letter (`homoglyphs` in rules.yaml).
    - tokens (short values, two-letter name components): not touching a letter
      or a digit, an underscore being an edge ("LI_WEI"; "250mA" is no Ma);
    - name words: not touching a letter, so an underscore or a digit is an
      edge ("OKONKWO_HEAD", "Doe1"); an Arabic or Hebrew word also behind its
      script's proclitics ("لمحمد", "ודוד");
    - substrings (long values, names in scripts without spaces): anywhere."""

    def __init__(self, rules: Rules):
        self.rules = rules

    def __call__(self, tokens: set[str], words: set[str],
                 substrings: set[str]) -> re.Pattern[str] | None:
        table = self.rules.lookalikes
        tokens, words, substrings = ({t.translate(table) for t in group}
                                     for group in (tokens, words, substrings))
        parts = []
        if tokens:
            parts.append(rf"(?<![^\W_])(?:{_longest_first(tokens)})(?![^\W_])")
        by_script: dict[str, set[str]] = {}
        for word in words:
            by_script.setdefault(script(word), set()).add(word)
        for name, group in sorted(by_script.items()):
            proclitic = self.rules.proclitics.get(name)
            before = f"(?:{proclitic})?" if proclitic else ""
            parts.append(rf"(?<!{LETTER}){before}(?:{_longest_first(group)})(?!{LETTER})")
        if substrings:
            parts.append(_longest_first(substrings))
        return re.compile("|".join(parts)) if parts else None


def _longest_first(texts: set[str]) -> str:
    return "|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True))


def _shifted(dates: set[str], shift: int | None) -> frozenset[str]:
    if not shift:
        return frozenset()
    moved = set()
    for day in dates:
        try:
            moved.add((date(int(day[:4]), int(day[4:6]), int(day[6:8]))
                       + timedelta(days=shift)).strftime("%Y%m%d"))
        except (ValueError, OverflowError):
            continue
    return frozenset(moved)


def check_elements(elements: list[Element], matchers: Matchers) -> list[Finding]:
    findings: list[Finding] = []
    rules = matchers.originals.rules
    judged = matchers.judged
    if len(judged) > JUDGED_LIMIT:
        judged.clear()
    for element in elements:
        key = (element.tag, element.vr, element.value, element.encodings)
        if key in judged:
            reason = judged[key]
        else:
            reason = judged[key] = _check(element, matchers, rules)
        if reason is not None:
            findings.append(Finding(element.path, reason))
    return findings


def _check(element: Element, matchers: Matchers, rules: Rules) -> str | None:
    vr, tag = element.vr, element.tag
    private = tag >> 16 & 1
    if vr in BINARY_VRS and len(element.value) > BULK_LIMIT:
        return None
    if vr == "UI":
        return _check_uids(element.texts(), matchers, rules)
    if vr in DATE_VRS:
        days = {date_part(t) for t in element.texts()}
        if days & matchers.dates - matchers.shifted:
            return "an original date"
        return None
    if vr in rules.name_vrs:
        return _search(element, matchers.names, "an original value in a person name", matchers)
    if tag in rules.coded_tags:
        return _search(element, matchers.codes, "an original value in a code", matchers)
    if vr in rules.text_vrs or private or vr in BINARY_VRS:
        found = _search(element, matchers.text, "an original value in free text", matchers)
        if found is None and vr in rules.text_vrs and not _kept_by_option(tag, matchers):
            found = _detect(element, rules, matchers.dates_in_text)
        return found
    return None


def _kept_by_option(tag: int, matchers: Matchers) -> bool:
    """An attribute an option keeps (a device serial number under rtnDevIdOpt)
    is the privacy officer's choice: its patterns are not the guard's to judge."""
    attribute = matchers.originals.rules.attribute(tag)
    return attribute is not None and bool(attribute.keep & matchers.originals.options)


def _search(element: Element, pattern: re.Pattern[str] | None, reason: str,
            matchers: Matchers) -> str | None:
    for text in element.texts():
        folded = fold(text)
        # Look-alikes are never ASCII: most text needs no translation.
        skeleton = folded if folded.isascii() else folded.translate(matchers.table)
        if pattern is not None and pattern.search(skeleton):
            return reason
        if matchers.uid_pieces and _holds_uid(folded, matchers.uid_pieces):
            return "an original UID in text"
    return None


def _holds_uid(text: str, uids: frozenset[str]) -> bool:
    for run in _UID_RUN.findall(text):
        parts = run.split(".")
        for start in range(len(parts)):
            for stop in range(start + 2, len(parts) + 1):
                if ".".join(parts[start:stop]) in uids:
                    return True
    return False


def patterns_in(text: str, rules: Rules) -> list[str]:
    """The detectors that find something in `text`, as "kind.name"."""
    found = []
    for match in rules.detectors.finditer(fold(text)):
        kind, _, name = (match.lastgroup or "").partition("__")
        found.append(f"{kind}.{name}")
    return found


def _detect(element: Element, rules: Rules, dates: bool) -> str | None:
    for text in element.texts():
        for match in rules.detectors.finditer(fold(text)):
            kind, _, name = (match.lastgroup or "").partition("__")
            if kind != "dates" or dates:
                return f"{DETECTOR_REASONS.get(kind, 'a pattern in free text')} ({name})"
    return None


def _check_uids(texts: list[str], matchers: Matchers, rules: Rules) -> str | None:
    originals = matchers.originals
    for uid in texts:
        uid = uid.rstrip("\x00 ")
        if uid in originals.uids:
            return "an original UID"
        if not (minted(uid, rules) or registry_uid(uid, rules) or uid in rules.relay_uids
                or uid in originals.known_uids):
            return "a UID the relay did not mint"
    return None
