"""Reading and checking the projects file: every problem named with its line.

The file is composed with PyYAML's node API so that each key keeps its line; the
data then goes through the pydantic schema, and each error's location is looked
up in the map of lines. Checks across sections (a destination that is not
defined, a secret that is not there, a recipe that does not load) follow, with
the line of the key at fault.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from relay_shared.deid import DeidConfig, DeidConfigError
from relay_shared.pixels.rules import PixelRulesError, load_rules

from .schema import ProjectsFile

Location = tuple[str | int, ...]


class ProjectsError(ValueError):
    """The projects file cannot be used; `problems` are `FILE:LINE: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _compose(text: str, source: str) -> tuple[Any, dict[Location, int]]:
    """The document as plain data, and the line (1-based) of every key and item."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ProjectsError([f"{source}:{line}: not valid YAML"]) from None
    if root is None:
        raise ProjectsError([f"{source}:1: the file is empty"])
    lines: dict[Location, int] = {(): root.start_mark.line + 1}
    return _plain(root, (), lines, source), lines


def _plain(node: yaml.Node, at: Location, lines: dict[Location, int], source: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _plain(key_node, at, {}, source)
            if isinstance(key, list | dict):
                raise ProjectsError([f"{source}:{key_node.start_mark.line + 1}: a key must "
                                     "be a single value"])
            if key in out:
                raise ProjectsError([f"{source}:{key_node.start_mark.line + 1}: {key!r} is "
                                     "given twice"])
            lines[(*at, str(key))] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, (*at, str(key)), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            items.append(_plain(item, (*at, index), lines, source))
        return items
    return yaml.SafeLoader(  # one scalar, resolved as safe_load would (int, bool, null...)
        "").construct_object(node, deep=True)  # type: ignore[no-untyped-call]


def _known_path(location: Location, lines: Mapping[Location, int]) -> Location:
    """The deepest path of keys of the file on the way to `location`: pydantic's location
    may hold steps that are not keys of the file (the kind of a destination), skipped."""
    at: Location = ()
    for step in location:
        for candidate in ((*at, step), (*at, str(step))):
            if candidate in lines:
                at = candidate
                break
    return at


def line_of(location: Location, lines: Mapping[Location, int]) -> int:
    return lines[_known_path(location, lines)]


def parse(text: str, source: str) -> tuple[ProjectsFile, dict[Location, int]]:
    data, lines = _compose(text, source)
    try:
        return ProjectsFile.model_validate(data), lines
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = line_of(tuple(error["loc"]), lines)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            name = ".".join(str(s) for s in _known_path(tuple(error["loc"]), lines))
            problems.append(f"{source}:{where}: {name}: {message}" if name else
                            f"{source}:{where}: {message}")
        raise ProjectsError(sorted(set(problems), key=_line_number)) from None


def _line_number(problem: str) -> int:
    try:
        return int(problem.split(":")[-2 if problem.count(":") < 2 else 1])
    except ValueError:
        return 0


def read_secret(name: str, secrets_dir: str | None) -> str | None:
    """An environment variable, else a file of that name in RELAY_SECRETS_DIR."""
    value = os.environ.get(name)
    if value:
        return value
    if secrets_dir:
        path = Path(secrets_dir) / name
        if path.is_file():
            return path.read_text(encoding="utf-8").strip() or None
    return None


def secret_references(file: ProjectsFile) -> list[tuple[Location, str]]:
    """Every `*_env` in the file, with where it is."""
    found: list[tuple[Location, str]] = []
    for name, destination in file.destinations.items():
        reference = getattr(destination, "password_env", None)
        if reference:
            found.append((("destinations", name, "password_env"), reference))
    for index, project in enumerate(file.projects):
        if project.deid and project.deid.secret_env:
            found.append((("projects", index, "deid", "secret_env"), project.deid.secret_env))
        if project.identifiers and project.identifiers.token_env:
            found.append((("projects", index, "identifiers", "token_env"),
                          project.identifiers.token_env))
    return found


def cross_check(file: ProjectsFile, lines: Mapping[Location, int], source: str,
                base: Path, secrets_dir: str | None) -> tuple[dict[str, str], list[str]]:
    """The checks that span sections; returns the resolved secrets and the problems."""
    problems: list[str] = []

    def problem(location: Location, message: str) -> None:
        problems.append(f"{source}:{line_of(location, lines)}: {message}")

    seen: set[str] = set()
    for index, project in enumerate(file.projects):
        if project.name in seen:
            problem(("projects", index, "name"), f"project {project.name!r} is defined twice")
        seen.add(project.name)
        for position, name in enumerate(project.destinations):
            if name not in file.destinations:
                problem(("projects", index, "destinations", position),
                        f"unknown destination {name!r} (not under destinations:)")
        _check_files(project, index, base, problem)
    secrets: dict[str, str] = {}
    for location, reference in secret_references(file):
        value = read_secret(reference, secrets_dir)
        if value is None:
            problem(location, f"secret {reference} is not set (no such environment variable, "
                              "nor file in RELAY_SECRETS_DIR)")
        elif location[-1] == "secret_env" and len(value) < 16:
            problem(location, f"secret {reference} is shorter than 16 characters")
        else:
            secrets[reference] = value
    return secrets, sorted(problems, key=_line_number)


def _check_files(project: Any, index: int, base: Path, problem: Any) -> None:
    """A recipe or a rules file that does not load stops the file, not a series later."""
    if project.deid is not None:
        if project.deid.recipe is not None:
            try:
                DeidConfig.from_settings(project.deid.options or [],
                                         str(resolve_path(project.deid.recipe, base)))
            except (OSError, DeidConfigError) as exc:
                problem(("projects", index, "deid", "recipe"),
                        f"the recipe cannot be used: {_short(exc)}")
        elif project.deid.options is not None:
            try:
                DeidConfig.from_settings(project.deid.options, None)
            except DeidConfigError as exc:
                problem(("projects", index, "deid", "options"), _short(exc))
    if project.pixels is not None and project.pixels.rules is not None:
        try:
            load_rules(resolve_path(project.pixels.rules, base))
        except (OSError, PixelRulesError) as exc:
            problem(("projects", index, "pixels", "rules"),
                    f"the pixel rules cannot be used: {_short(exc)}")


def _short(exc: BaseException) -> str:
    # Configuration files hold no patient data: their own error text is safe to show.
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def resolve_path(path: Path, base: Path) -> Path:
    """A relative path in the file is relative to the file's folder."""
    return path if path.is_absolute() else base / path


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
