"""Text as the guard compares it: normalised, case-folded, split by script."""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Mapping

# Scripts written without spaces between words: Han, kana, Hangul, Thai, Lao,
# Khmer, Myanmar. A name there is a run of characters inside other text.
_UNBOUNDED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f]")
# PN separates components with ^, groups (alphabetic, ideographic, phonetic)
# with =; people write names with spaces, commas and hyphens.
_NAME_PARTS = re.compile(r"[\^=\s,.;/\\()\"'-]+")


# Accents of the Latin, Greek and Cyrillic scripts: "Muller" in a report
# gives away "Müller" as well. So do Hebrew points and Arabic vowel signs and
# elongation, written or left out at will. Kana voicing marks stay: they make
# another sound, not another spelling.
_ACCENTS = re.compile("[\u0300-\u036f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
                      "\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4"
                      "\u06e7\u06e8\u06ea-\u06ed]")


# A letter, for the edges of a name: an underscore, a digit or punctuation is
# an edge ("OKONKWO_HEAD", "Doe1").
LETTER = r"[^\W\d_]"
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
_HEBREW = re.compile("[\u0590-\u05ff]")


def _hidden() -> re.Pattern[str]:
    """What a reader does not see: format characters (category Cf: zero-width
    space and joiners, soft hyphen, bidirectional controls) and variation
    selectors. Inside a name ("Jans\u200bsen") they would hide it from a
    search only, so they are not compared. From this Python's Unicode data."""
    hidden = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    hidden += [chr(c) for c in range(0xFE00, 0xFE10)] + [chr(c) for c in range(0xE0100, 0xE01F0)]
    return re.compile("[" + "".join(re.escape(c) for c in hidden) + "]")


_HIDDEN = _hidden()


def fold(text: str) -> str:
    """NFKC, full case folding, accents and vowel points dropped, invisible
    characters left out: "Weiß" and "WEISS" are both "weiss", "Zoë" is "zoe",
    full-width letters are the letters, the Turkish dotless i is an i,
    "מֹשֶׁה" is "משה", "Jans\u200bsen" is "janssen"."""
    if text.isascii():
        return text.lower()
    text = _HIDDEN.sub("", text)
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return unicodedata.normalize("NFC", _ACCENTS.sub("", folded)).replace("\u0131", "i")


def unbounded(text: str) -> bool:
    """Whether `text` is in a script without word boundaries."""
    return _UNBOUNDED.search(text) is not None


def name_components(name: str) -> list[str]:
    """The folded components of a person's name, every group of a PN."""
    return [part for part in _NAME_PARTS.split(fold(name)) if part]


def words(text: str) -> list[str]:
    """The folded words of a text (letters and digits), for the code vocabulary."""
    return [w for w in re.split(r"[^\w]+|_", fold(text)) if w]


def lookalikes(homoglyphs: Mapping[str, str]) -> dict[int, str]:
    """For str.translate: each letter that looks like a Latin letter (a
    Cyrillic a, a Greek capital rho), as that letter."""
    table: dict[int, str] = {}
    for latin, chars in homoglyphs.items():
        table.update((ord(char), latin) for char in chars)
    return table


def script(word: str) -> str:
    """Which proclitics a word may carry: "arabic", "hebrew", or "" for none."""
    if _ARABIC.match(word):
        return "arabic"
    return "hebrew" if _HEBREW.match(word) else ""
