"""The rules of burned-in text as data: which images may hold text, and which
regions to black out on which devices. The built-in file ships with the code;
an operator's file in the same format extends it. Both are validated when
loaded, and a mistake is reported with the line it is on.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from pydicom.datadict import dictionary_VR, tag_for_keyword

BUILTIN = "rules.yaml"
FLAG_KEYS = frozenset({"burned_in_annotation", "modalities", "sop_classes", "image_types",
                       "devices"})
RULE_KEYS = frozenset({"name", "when", "boxes", "covers_text"})
DEVICE_KEYWORDS = ("Manufacturer", "ManufacturerModelName", "Rows", "Columns")


class PixelRulesError(ValueError):
    """A rules file that cannot be used; the message names the file and line."""


Value = str | int


@dataclass(frozen=True)
class Condition:
    keyword: str
    accepted: tuple[Value, ...]

    def holds(self, values: tuple[str, ...]) -> bool:
        for want in self.accepted:
            if isinstance(want, int):
                if any(v.strip().lstrip("-").isdigit() and int(v) == want for v in values):
                    return True
            elif any(fnmatch.fnmatchcase(v.strip().upper(), want.upper()) for v in values):
                return True
        return False


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class RegionRule:
    name: str
    conditions: tuple[Condition, ...]
    boxes: tuple[Box, ...]
    covers_text: bool
    source: str  # file:line, for the audit and for operators

    @property
    def keywords(self) -> set[str]:
        return {c.keyword for c in self.conditions}


@dataclass
class Rules:
    versions: list[str] = field(default_factory=list)
    burned_in_annotation: bool = True
    modalities: set[str] = field(default_factory=set)
    sop_classes: set[str] = field(default_factory=set)
    image_types: set[str] = field(default_factory=set)
    devices: list[tuple[Condition, ...]] = field(default_factory=list)
    regions: list[RegionRule] = field(default_factory=list)

    @property
    def version(self) -> str:
        return "+".join(self.versions)

    def keywords(self) -> set[str]:
        """Every attribute a decision or a rule reads."""
        # The device and size too: a region rule learned from the gate is made of them.
        used = {"BurnedInAnnotation", "Modality", "SOPClassUID", "ImageType", *DEVICE_KEYWORDS}
        for device in self.devices:
            used |= {c.keyword for c in device}
        for rule in self.regions:
            used |= rule.keywords
        return used


def extended(rules: Rules, text: str, origin: str) -> Rules:
    """A copy of `rules` with the entries of a rules file's `text` added (checked as a
    file's are; a mistake names `origin` and the line)."""
    copy = deepcopy(rules)
    _merge(copy, text, origin)
    return copy


def load_rules(extra: Path | str | None = None) -> Rules:
    """The built-in rules, extended by an operator's file when given."""
    rules = Rules()
    builtin = resources.files("relay_shared.pixels").joinpath("data", BUILTIN)
    _merge(rules, builtin.read_text(encoding="utf-8"), f"built-in {BUILTIN}")
    if extra is not None:
        path = Path(extra)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PixelRulesError(f"{path}: cannot be read ({exc.strerror})") from None
        _merge(rules, text, str(path))
    return rules


class _LineLoader(yaml.SafeLoader):
    """Keeps the line of every mapping, so errors can point at it."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    return _Located(mapping, node.start_mark.line + 1)


class _Located(dict):
    def __init__(self, mapping: dict, line: int):
        super().__init__(mapping)
        self.line = line


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _merge(rules: Rules, text: str, origin: str) -> None:
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark else origin
        raise PixelRulesError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") \
            from None
    if not isinstance(doc, _Located):
        raise PixelRulesError(f"{origin}: must be a mapping with `version`, `flag`, `regions`")
    _expect_keys(doc, {"version", "flag", "regions"}, origin)
    if not isinstance(doc.get("version"), str | int | float):
        raise PixelRulesError(f"{origin}:{doc.line}: `version` is required (a string)")
    rules.versions.append(str(doc["version"]))
    _merge_flag(rules, doc.get("flag") or _Located({}, doc.line), origin)
    names = {r.name for r in rules.regions}
    for node in _list(doc.get("regions"), origin, doc.line, "regions"):
        rule = _region(node, origin)
        if rule.name in names:
            raise PixelRulesError(f"{origin}:{node.line}: rule name {rule.name!r} is used twice")
        names.add(rule.name)
        rules.regions.append(rule)


def _merge_flag(rules: Rules, flag: object, origin: str) -> None:
    if not isinstance(flag, _Located):
        raise PixelRulesError(f"{origin}: `flag` must be a mapping")
    _expect_keys(flag, FLAG_KEYS, origin)
    if "burned_in_annotation" in flag:
        rules.burned_in_annotation = bool(flag["burned_in_annotation"])
    for key, target in (("modalities", rules.modalities), ("sop_classes", rules.sop_classes),
                        ("image_types", rules.image_types)):
        for value in _list(flag.get(key), origin, flag.line, key):
            if not isinstance(value, str | int | float) or not str(value).strip():
                raise PixelRulesError(f"{origin}:{flag.line}: `{key}` holds an empty or "
                                      "non-text entry")
            target.add(str(value).strip().upper())
    for device in _list(flag.get("devices"), origin, flag.line, "devices"):
        if not isinstance(device, _Located) or not device:
            raise PixelRulesError(f"{origin}:{flag.line}: each device is a mapping of "
                                  "keyword: pattern")
        rules.devices.append(_conditions(device, origin))


def _region(node: object, origin: str) -> RegionRule:
    if not isinstance(node, _Located):
        raise PixelRulesError(f"{origin}: each entry of `regions` must be a mapping")
    _expect_keys(node, RULE_KEYS, origin)
    name = node.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PixelRulesError(f"{origin}:{node.line}: a rule needs a `name`")
    when = node.get("when")
    if not isinstance(when, _Located) or not when:
        raise PixelRulesError(f"{origin}:{node.line}: rule {name!r} needs `when` conditions")
    boxes = tuple(_box(b, origin, node.line, name)
                  for b in _list(node.get("boxes"), origin, node.line, "boxes"))
    if not boxes:
        raise PixelRulesError(f"{origin}:{node.line}: rule {name!r} has no `boxes`")
    covers = node.get("covers_text", False)
    if not isinstance(covers, bool):
        raise PixelRulesError(f"{origin}:{node.line}: `covers_text` is true or false")
    return RegionRule(name.strip(), _conditions(when, origin), boxes, covers,
                      f"{origin}:{node.line}")


def _conditions(when: _Located, origin: str) -> tuple[Condition, ...]:
    out = []
    for keyword, wanted in when.items():
        tag = tag_for_keyword(str(keyword))
        if tag is None or dictionary_VR(tag) in ("SQ", "OB", "OW", "UN"):
            raise PixelRulesError(f"{origin}:{when.line}: {keyword!r} is not a DICOM keyword "
                                  "of a plain attribute")
        accepted = wanted if isinstance(wanted, list) else [wanted]
        if not accepted or any(isinstance(a, bool) or not isinstance(a, str | int)
                               for a in accepted):
            raise PixelRulesError(f"{origin}:{when.line}: {keyword} must be a text pattern, "
                                  "a whole number, or a list of them")
        out.append(Condition(str(keyword), tuple(accepted)))
    return tuple(out)


def _box(value: object, origin: str, line: int, name: str) -> Box:
    if (not isinstance(value, list) or len(value) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
        raise PixelRulesError(f"{origin}:{line}: rule {name!r}: a box is [x, y, width, height] "
                              "in whole pixels")
    x, y, width, height = value
    if x < 0 or y < 0 or width <= 0 or height <= 0:
        raise PixelRulesError(f"{origin}:{line}: rule {name!r}: box {value} must start at "
                              "x, y >= 0 and have a positive width and height")
    return Box(x, y, width, height)


def _list(value: object, origin: str, line: int, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PixelRulesError(f"{origin}:{line}: `{key}` must be a list")
    return value


def _expect_keys(node: Mapping, allowed: frozenset[str] | set[str], origin: str) -> None:
    unknown = sorted(str(k) for k in node if k not in allowed)
    if unknown:
        line = getattr(node, "line", "?")
        raise PixelRulesError(f"{origin}:{line}: unknown key(s) {', '.join(unknown)}; "
                              f"expected {', '.join(sorted(allowed))}")
