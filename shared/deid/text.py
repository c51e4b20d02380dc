"""Text as the profile compares it: normalised, case-folded, split by script,
and the way back from a match in folded text to the characters it covers.

The guard (`relay_shared.guard.text`) folds text the same way by its own
code: the two must agree on what "the same name" is, yet a mistake in one
must not blind the other.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping

# Scripts written without spaces between words: Han, kana, Hangul, Thai, Lao,
# Khmer, Myanmar. A name there is a run of characters inside other text.
_UNBOUNDED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f]")
# PN separates components with ^ and groups (alphabetic, ideographic,
# phonetic) with =; people write names with spaces, commas and hyphens.
_NAME_PARTS = re.compile(r"[\^=\s,.;/\\()\"'-]+")
# Marks a writer may or may not put on the same name: Latin, Greek and
# Cyrillic accents ("Muller" gives away "Müller"), Hebrew points, Arabic
# vowel signs and the Arabic elongation (tatweel). Kana voicing marks stay:
# they make another sound, not another spelling.
_MARKS = re.compile("[\u0300-\u036f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
                    "\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4"
                    "\u06e7\u06e8\u06ea-\u06ed]")
SCRUBBED = "***"
# A letter, for the edges of a name: underscores, digits and punctuation are
# edges ("OKONKWO_HEAD", "Doe1"), so a name is not hidden by what it is glued to.
LETTER = r"[^\W\d_]"
# Arabic and Hebrew write prepositions, conjunctions and the article onto the
# next word ("لمحمد", "ודוד"): a name keeps its edges behind them.
ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
HEBREW = re.compile("[\u0590-\u05ff]")


def _invisible() -> re.Pattern[str]:
    """Characters that show nothing of their own: format characters (Unicode category Cf:
    zero-width space and joiners, soft hyphen, bidirectional controls, tags)
    and variation selectors. Written inside a name ("Jans\u200bsen") they
    hide it from a search, not from a reader, so they are not compared.
    Taken from this Python's Unicode data, so new ones come with it."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)
             if unicodedata.category(chr(c)) == "Cf"]
    chars += [chr(c) for c in (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))]
    # The Arabic elongation (tatweel) stretches a line between letters: left
    # out before folding, it cannot keep apart what NFC joins (Hangul jamo).
    chars.append("\u0640")
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]")


_INVISIBLE = _invisible()


def fold(text: str) -> str:
    """NFKC, full case folding, marks dropped: "Weiß" and "WEISS" are both
    "weiss", "Zoë" is "zoe", full-width letters are the letters, the Turkish
    dotless i is an i, a final sigma is a sigma."""
    return text.lower() if text.isascii() else _fold_piece(_INVISIBLE.sub("", text))


def _fold_piece(text: str) -> str:
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return unicodedata.normalize("NFC", _MARKS.sub("", folded)).replace("\u0131", "i")


def _joins(char: str) -> bool:
    """Whether `char` belongs to the character before it: a combining mark,
    one that becomes one (the half-width kana voicing mark), a Hangul vowel
    or final consonant that NFC joins to the syllable before it. Folded with
    it, a text folds piece by piece as it folds whole (`fold`)."""
    if char.isascii():
        return False
    if "\u1160" <= char <= "\u11ff" or "\ud7b0" <= char <= "\ud7ff":
        return True
    return bool(unicodedata.combining(char)
                or unicodedata.combining(unicodedata.normalize("NFKC", char)[:1] or " "))


def fold_mapped(text: str) -> tuple[str, list[int] | None]:
    """`text` folded, with the index in `text` of each folded character (None
    when they are the same: ASCII folds one character to one). Folded one
    character at a time with the marks that follow it, so that a match maps
    back to whole characters and every text, original or not, folds alike.
    Invisible characters are left out first, as `fold` leaves them out; a
    match that spans one covers it in `text`."""
    if text.isascii():
        return text.lower(), None
    if _INVISIBLE.search(text):
        kept = [i for i, char in enumerate(text) if not _INVISIBLE.match(char)]
        folded, where = _fold_mapped("".join(text[i] for i in kept))
        if where is None:  # the rest is ASCII: one character for one
            where = list(range(len(folded) + 1))
        kept.append(len(text))
        return folded, [kept[i] for i in where]
    return _fold_mapped(text)


def _fold_mapped(text: str) -> tuple[str, list[int] | None]:
    if text.isascii():
        return text.lower(), None
    parts: list[str] = []
    where: list[int] = []
    start = 0
    for end in range(1, len(text) + 1):
        if end < len(text) and _joins(text[end]):
            continue
        piece = _fold_piece(text[start:end])
        parts.append(piece)
        where.extend([start] * len(piece))
        start = end
    where.append(len(text))
    return "".join(parts), where


def replace_spans(text: str, spans: Iterable[tuple[int, int]], where: list[int] | None) -> str:
    """`text` with each span of its folded form replaced by SCRUBBED; spans
    that overlap or touch are replaced as one."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if where is not None:
            start, end = where[start], _end_of(where, end)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + SCRUBBED + text[end:]
    return text


def _end_of(where: list[int], end: int) -> int:
    """The end in the original text of a folded span ending at `end`: the
    whole of the last original character it touches."""
    last = where[end - 1]
    for index in range(end, len(where)):
        if where[index] != last:
            return where[index]
    return where[-1]


def unbounded(text: str) -> bool:
    """Whether `text` is in a script without word boundaries."""
    return _UNBOUNDED.search(text) is not None


def name_components(name: str) -> list[str]:
    """The folded components of a person's name, of every group of a PN."""
    return [part for part in _NAME_PARTS.split(fold(name)) if part]


def skeleton_table(homoglyphs: Mapping[str, str]) -> dict[int, str]:
    """A translation of folded text that writes each letter that looks like a
    Latin letter (a Cyrillic a, a Greek capital rho) as that letter: one character for
    one, so a match keeps its place. From the guard's rules (`homoglyphs`)."""
    return {ord(char): latin for latin, chars in homoglyphs.items() for char in chars}


def script_of(word: str) -> str:
    """"arabic", "hebrew" or "other": which proclitics a word may carry."""
    if ARABIC.match(word):
        return "arabic"
    return "hebrew" if HEBREW.match(word) else "other"
