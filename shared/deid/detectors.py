"""What identifies in free text by its form, and which names and values
identify nobody: the guard's rules (shared/guard/data/rules.yaml), read as
data by the profile's own code.

The profile removes what the detectors find (a phone number, an e-mail
address, a date written out, a national ID) from the free text it keeps, so
the guard does not have to refuse the instance for it; the two share the
rules, not the code that applies them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from importlib import resources
from typing import Any

import yaml

from .text import fold, skeleton_table

RULES_PACKAGE = "relay_shared.guard"
RULES_FILE = "rules.yaml"
KINDS = ("dates", "phones", "emails", "national_ids")
# Free text the detectors read. Not names (PN), code strings, AE titles nor
# URIs: a value there that the detectors cut would no longer be one.
DETECTED_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC"})
CACHED_LENGTH = 1024


def _load_yaml(text: str) -> Any:
    """safe_load, by libyaml where PyYAML was built with it: the packaged rules take a
    tenth of the time to load, at every start of a worker and every CLI command."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@dataclass(frozen=True)
class TextRules:
    detectors: re.Pattern[str]  # a named group per detector: "<kind>__<name>"
    coded_tags: frozenset[int]  # codes: their values are not free text
    name_particles: frozenset[str]  # folded: "de", "van", "dr"
    placeholders: frozenset[str]  # folded: "anonymized", "removed"
    proclitics: dict[str, str]  # by script: what may be written onto a name
    skeleton: dict[int, str]  # look-alike letters, as the Latin letter (str.translate)


@cache
def text_rules() -> TextRules:
    data = resources.files(RULES_PACKAGE) / "data" / RULES_FILE
    rules = _load_yaml(data.read_text(encoding="utf-8"))
    return TextRules(
        detectors=_detectors(rules["detectors"]),
        coded_tags=frozenset(int(t, 16) for t in rules["fields"]["coded"]),
        name_particles=frozenset(fold(str(p)) for p in rules["name_particles"]),
        placeholders=frozenset(fold(str(p)) for p in rules["placeholders"]),
        proclitics={str(k): str(v) for k, v in rules["names"]["proclitics"].items()},
        skeleton=skeleton_table({str(k): str(v) for k, v in rules["homoglyphs"].items()}),
    )


def _detectors(spec: dict) -> re.Pattern[str]:
    months = sorted({fold(name) for names in spec["months"].values() for entry in names
                     for name in str(entry).split("|")}, key=len, reverse=True)
    month = "|".join(re.escape(m) for m in months)
    parts = [f"(?P<{kind}__{name}>{str(pattern).replace('{month}', month)})"
             for kind in KINDS for name, pattern in spec[kind].items()]
    return re.compile("|".join(parts))


def detected_spans(folded: str, dates: bool = True) -> list[tuple[int, int]]:
    """Where the detectors find something in folded text; dates only when
    `dates` (under rtnLongFullDatesOpt a date in text is no more than the
    dates beside it)."""
    found = _found(folded) if len(folded) <= CACHED_LENGTH else _find(folded)
    return [(start, end) for start, end, is_date in found if dates or not is_date]


def _find(folded: str) -> tuple[tuple[int, int, bool], ...]:
    return tuple((*m.span(), (m.lastgroup or "").startswith("dates__"))
                 for m in text_rules().detectors.finditer(folded))


# The instances of a series repeat their descriptions and code meanings: each
# short text is searched once.
_found = lru_cache(maxsize=4096)(_find)


def detector_for(tag: int, vr: str, keeps_dates: bool
                 ) -> Callable[[str], list[tuple[int, int]]] | None:
    """The detectors for one element's text, None where they do not apply:
    a code value is no free text (a SNOMED code is not a phone number)."""
    if vr not in DETECTED_VRS or tag in text_rules().coded_tags:
        return None
    return partial(detected_spans, dates=not keeps_dates)
