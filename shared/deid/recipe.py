"""The operator's recipe: per-attribute overrides of the profile, in YAML.

```yaml
version: "site-a-2024-06"        # recorded in every audit record
attributes:
  StudyDescription: keep
  "(0018,1030)": remove          # ProtocolName
  InstitutionName: {replace: "RESEARCH SITE"}
  PatientComments: blank
  OtherPatientIDs: hash
  AcquisitionDate: shift
safe_private:                    # extends the built-in safe private list
  - {group: 0x0029, creator: "SIEMENS CSA HEADER", element: 0x08}
local_codes:                     # codes of local coding schemes (see codes.py)
  schemes: ["HOSPX"]             # local besides 99* and L: their codes pseudonymised
  keep: ["99RADLEX"]             # local schemes whose codes are kept as they are
```

Every mistake is reported with its line, because the service refuses to
start on a bad recipe and the operator has to find the line quickly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydicom.datadict import dictionary_VR, tag_for_keyword

from .table import parse_tag

ACTIONS = frozenset({"keep", "remove", "blank", "replace", "hash", "shift"})
SHIFTABLE_VRS = frozenset({"DA", "DT"})


class DeidConfigError(ValueError):
    """A de-identification setting or recipe that cannot be used as it is."""


@dataclass(frozen=True)
class Rule:
    tag: int
    action: str
    value: str | None
    line: int


@dataclass(frozen=True)
class SafePrivate:
    group: int
    creator: str
    element: int  # low byte of the element number, the block offset removed


@dataclass(frozen=True)
class Recipe:
    version: str
    sha256: str
    rules: tuple[Rule, ...] = ()
    safe_private: tuple[SafePrivate, ...] = ()
    local_schemes: tuple[str, ...] = ()
    kept_schemes: tuple[str, ...] = ()


def load_recipe(path: str | Path) -> Recipe:
    text = Path(path).read_text(encoding="utf-8")
    return parse_recipe(text, source=str(path))


def parse_recipe(text: str, source: str = "recipe") -> Recipe:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else "?"
        raise DeidConfigError(f"{source}:{line}: not valid YAML") from exc
    if root is None:
        raise DeidConfigError(f"{source}:1: the recipe is empty")
    top = _mapping(root, source)
    unknown = set(top) - {"version", "attributes", "safe_private", "local_codes"}
    for key in unknown:
        raise DeidConfigError(f"{source}:{_line(top[key][0])}: unknown section {key!r}")
    version = _scalar(top["version"][1], source) if "version" in top else "unversioned"
    rules = _rules(top["attributes"][1], source) if "attributes" in top else ()
    safe = _safe_private(top["safe_private"][1], source) if "safe_private" in top else ()
    local, kept = _local_codes(top["local_codes"][1], source) if "local_codes" in top else ((), ())
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Recipe(version=version, sha256=digest, rules=rules, safe_private=safe,
                  local_schemes=local, kept_schemes=kept)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _mapping(node: yaml.Node, source: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise DeidConfigError(f"{source}:{_line(node)}: expected a mapping")
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = _scalar(key, source)
        if name in out:
            raise DeidConfigError(f"{source}:{_line(key)}: {name!r} is given twice")
        out[name] = (key, value)
    return out


def _scalar(node: yaml.Node, source: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise DeidConfigError(f"{source}:{_line(node)}: expected a single value")
    return str(node.value)


def _rules(node: yaml.Node, source: str) -> tuple[Rule, ...]:
    rules = []
    for name, (key, value) in _mapping(node, source).items():
        line = _line(key)
        tag = _attribute_tag(name, f"{source}:{line}")
        action, replacement = _action(value, f"{source}:{_line(value)}")
        if action == "shift" and _vr(tag) not in SHIFTABLE_VRS:
            raise DeidConfigError(f"{source}:{line}: {name} is not a date, it cannot be shifted")
        rules.append(Rule(tag=tag, action=action, value=replacement, line=line))
    return tuple(rules)


def _attribute_tag(name: str, where: str) -> int:
    text = name.strip()
    tag = tag_for_keyword(text)
    if tag is None:
        try:
            tag = parse_tag(text if text.startswith("(") else f"({text})")
        except ValueError:
            raise DeidConfigError(f"{where}: unknown attribute {name!r}") from None
    if (tag >> 16) % 2 == 1:
        raise DeidConfigError(f"{where}: private attribute {name!r}: list it under safe_private")
    if _vr(tag) is None:
        raise DeidConfigError(f"{where}: unknown attribute {name!r}")
    return tag


def _vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _action(node: yaml.Node, where: str) -> tuple[str, str | None]:
    if isinstance(node, yaml.ScalarNode):
        action = str(node.value).strip()
        if action.startswith("replace:"):
            return "replace", action.split(":", 1)[1].strip()
        if action not in ACTIONS or action == "replace":
            raise DeidConfigError(f"{where}: unknown action {action!r}, expected one of "
                                  f"{', '.join(sorted(ACTIONS))}")
        return action, None
    if isinstance(node, yaml.MappingNode) and len(node.value) == 1:
        key, value = node.value[0]
        if isinstance(key, yaml.ScalarNode) and key.value == "replace":
            return "replace", _scalar(value, where.rsplit(":", 1)[0])
    raise DeidConfigError(f"{where}: expected an action or {{replace: VALUE}}")


def _safe_private(node: yaml.Node, source: str) -> tuple[SafePrivate, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise DeidConfigError(f"{source}:{_line(node)}: safe_private must be a list")
    return tuple(safe_private_entry(item, source) for item in node.value)


def _local_codes(node: yaml.Node, source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    fields = _mapping(node, source)
    for key in set(fields) - {"schemes", "keep"}:
        raise DeidConfigError(f"{source}:{_line(fields[key][0])}: unknown key {key!r} under "
                              "local_codes, expected schemes or keep")
    lists: list[tuple[str, ...]] = []
    for key in ("schemes", "keep"):
        if key not in fields:
            lists.append(())
            continue
        value = fields[key][1]
        if not isinstance(value, yaml.SequenceNode):
            raise DeidConfigError(f"{source}:{_line(value)}: local_codes {key} must be a list "
                                  "of coding scheme designators")
        names = tuple(_scalar(n, source).strip().upper() for n in value.value)
        if not all(names):
            raise DeidConfigError(f"{source}:{_line(value)}: an empty coding scheme designator")
        lists.append(names)
    return lists[0], lists[1]


def safe_private_entry(node: yaml.Node, source: str) -> SafePrivate:
    fields = _mapping(node, source)
    where = f"{source}:{_line(node)}"
    if set(fields) != {"group", "creator", "element"}:
        raise DeidConfigError(f"{where}: a safe private entry needs group, creator and element")
    try:
        group = int(_scalar(fields["group"][1], source), 0)
        element = int(_scalar(fields["element"][1], source), 0)
    except ValueError:
        raise DeidConfigError(f"{where}: group and element must be numbers (0x0019)") from None
    if group % 2 == 0 or not 0 <= element <= 0xFF:
        raise DeidConfigError(f"{where}: group must be odd and element a byte (0x00-0xFF)")
    return SafePrivate(group, _scalar(fields["creator"][1], source).strip(), element)


def load_safe_private_list(text: str, source: str) -> tuple[SafePrivate, ...]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return _safe_private(root, source) if root is not None else ()
