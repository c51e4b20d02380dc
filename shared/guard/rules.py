"""The guard's rules, loaded from its data files once and compiled."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from .text import fold, lookalikes


def _load_yaml(text: str) -> Any:
    """safe_load, by libyaml where PyYAML was built with it: the packaged rules take a
    tenth of the time to load, at every start of a worker and every CLI command."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class GuardRulesError(ValueError):
    """A rules file or an added pattern that cannot be used."""


@dataclass(frozen=True)
class Attribute:
    """An attribute of PS3.15 Table E.1-1: the options that keep or clean it."""

    keep: frozenset[str]
    clean: frozenset[str]
    description: bool = False  # removed as it may hold an identifier: never an original


@dataclass(frozen=True)
class Rules:
    version: int
    min_value_length: int
    max_value_length: int
    word_min: int
    short_word_min: int
    unbounded_min: int
    substring_min: int
    placeholders: frozenset[str]
    placeholder_dates: frozenset[str]
    name_particles: frozenset[str]
    registry_roots: tuple[str, ...]
    minted_root: str
    relay_uids: frozenset[str]
    meta_identifying: frozenset[int]
    name_vrs: frozenset[str]
    text_vrs: frozenset[str]
    coded_tags: frozenset[int]
    vocabulary_tags: frozenset[int]
    attributes: Mapping[int, Attribute]
    repeating: tuple[tuple[int, int, Attribute], ...]  # (mask, value, attribute)
    detectors: re.Pattern[str]  # one pattern, a named group per detector
    proclitics: Mapping[str, str]  # by script: what may be written onto a name
    lookalikes: Mapping[int, str]  # for str.translate: look-alike letters as Latin

    def attribute(self, tag: int) -> Attribute | None:
        found = self.attributes.get(tag)
        if found is None and self.repeating:
            for mask, value, attribute in self.repeating:
                if tag & mask == value:
                    return attribute
        return found


@cache
def default_rules() -> Rules:
    return load_rules()


def load_rules(extra_id_patterns: Mapping[str, str] | None = None) -> Rules:
    """The packaged rules, with a site's own national-ID patterns added."""
    data = resources.files("relay_shared.guard") / "data"
    rules = _load_yaml((data / "rules.yaml").read_text(encoding="utf-8"))
    table = _load_yaml((data / "attributes.yaml").read_text(encoding="utf-8"))
    ids = dict(rules["detectors"]["national_ids"])
    for name, pattern in (extra_id_patterns or {}).items():
        ids["site_" + re.sub(r"\W", "_", str(name))] = pattern
    rules["detectors"]["national_ids"] = ids
    return _build(rules, table["attributes"], frozenset(table.get("descriptions", ())))


def _build(rules: dict[str, Any], table: dict[str, dict[str, Any]],
           descriptions: frozenset[str] = frozenset()) -> Rules:
    attributes: dict[int, Attribute] = {}
    repeating: list[tuple[int, int, Attribute]] = []
    for key, entry in table.items():
        clean = frozenset(entry.get("clean", ()))
        attribute = Attribute(frozenset(entry.get("keep", ())), clean, bool(clean & descriptions))
        if "x" in key:
            mask = int("".join("0" if c == "x" else "F" for c in key), 16)
            repeating.append((mask, int(key.replace("x", "0"), 16), attribute))
        else:
            attributes[int(key, 16)] = attribute
    names, fields, uids = rules["names"], rules["fields"], rules["uids"]
    return Rules(
        version=rules["version"],
        min_value_length=rules["min_value_length"],
        max_value_length=rules["max_value_length"],
        word_min=names["word_min"], short_word_min=names["short_word_min"],
        unbounded_min=names["unbounded_min"], substring_min=rules["substring_min"],
        placeholders=frozenset(fold(p) for p in rules["placeholders"]),
        placeholder_dates=frozenset(str(d) for d in rules["placeholder_dates"]),
        name_particles=frozenset(fold(p) for p in rules["name_particles"]),
        registry_roots=tuple(uids["registry_roots"]), minted_root=uids["minted_root"],
        relay_uids=frozenset(uids["relay_uids"]),
        meta_identifying=frozenset(int(t, 16) for t in rules["meta_identifying"]),
        name_vrs=frozenset(fields["names"]), text_vrs=frozenset(fields["free_text"]),
        coded_tags=frozenset(int(t, 16) for t in fields["coded"]),
        vocabulary_tags=frozenset(int(t, 16) for t in fields["vocabulary"]),
        attributes=attributes, repeating=tuple(repeating),
        detectors=_detectors(rules["detectors"]),
        proclitics=_proclitics(names["proclitics"]),
        lookalikes=lookalikes({str(k): str(v) for k, v in rules["homoglyphs"].items()}),
    )


def _proclitics(spec: dict[str, Any]) -> dict[str, str]:
    found = {}
    for name, pattern in spec.items():
        try:
            compiled = re.compile(str(pattern))
        except re.error as exc:
            raise GuardRulesError(f"proclitics of {name} do not compile: {exc.msg}") from None
        if compiled.groups:
            raise GuardRulesError(f"proclitics of {name} have a group; use (?:...)")
        found[str(name)] = str(pattern)
    return found


def _detectors(spec: dict[str, Any]) -> re.Pattern[str]:
    """All detectors in one pattern; the group that matched names the detector,
    as "<kind>__<name>" (e.g. "dates__written_day_first")."""
    months = sorted({fold(name) for names in spec["months"].values() for entry in names
                     for name in str(entry).split("|")}, key=len, reverse=True)
    month = "|".join(re.escape(m) for m in months)
    parts = []
    for kind in ("dates", "phones", "emails", "national_ids"):
        for name, pattern in spec[kind].items():
            text = str(pattern).replace("{month}", month)
            try:
                re.compile(text)
            except re.error as exc:
                raise GuardRulesError(f"guard pattern {kind}.{name} does not compile: "
                                      f"{exc.msg}") from None
            if re.compile(text).groups:
                raise GuardRulesError(f"guard pattern {kind}.{name} has a group; use (?:...)")
            parts.append(f"(?P<{kind}__{name}>{text})")
    return re.compile("|".join(parts))
