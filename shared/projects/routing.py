"""Which project takes a series: conditions compiled once, tried in file order.

A condition reads the series' first instance as it arrived (before
de-identification). Values are compared as DICOM text: a multi-valued attribute
(ImageType) is its values joined by backslashes for `regex`/`not_regex`, and
`equals`/`in` hold when the whole text or any single value matches; `min`/`max`
read a number (of each value: all must be in range). An attribute that is absent
or empty fails every test except `present: false` and `not_regex`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .schema import Condition, Match, Project

# What the router is given for one series: each attribute's values as text.
HeaderValues = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Arrival:
    """How a series came in, recorded by ingest."""

    source: str  # scp, folder, follow, collect
    calling_ae: str | None = None
    incoming_subdir: str | None = None


class Value(NamedTuple):
    """One attribute of the series, read once per series in the forms the tests want."""

    values: tuple[str, ...]
    text: str  # the values joined by backslashes, as DICOM writes them


View = Mapping[str, Value]
Test = Callable[[Arrival, View], bool]


@dataclass(frozen=True)
class Check:
    """One compiled condition and how to name it when it fails (no header value in it)."""

    test: Test
    describe: str
    cost: int  # cheap checks go first, so a project that does not match is left early


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def view_of(header: HeaderValues, keywords: Iterable[str]) -> dict[str, Value]:
    view = {}
    for keyword in keywords:
        values = header.get(keyword)
        if values and any(values):
            view[keyword] = Value(tuple(values), "\\".join(values))
    return view


def _header_checks(keyword: str, condition: Condition) -> list[Check]:
    checks: list[Check] = []
    if condition.present is not None:
        wanted = condition.present
        checks.append(Check(lambda _a, h: (keyword in h) is wanted,
                            f"{keyword} present: {str(wanted).lower()}", 0))
    if condition.equals is not None:
        checks.append(_in_check(keyword, [condition.equals], f"equals {condition.equals!r}"))
    if condition.in_ is not None:
        checks.append(_in_check(keyword, condition.in_, f"in {condition.in_!r}"))
    for bound in ("min", "max"):
        limit = getattr(condition, bound)
        if limit is not None:
            checks.append(_range_check(keyword, bound, limit))
    if condition.regex is not None:
        search = re.compile(condition.regex).search
        checks.append(Check(lambda _a, h: keyword in h and search(h[keyword].text) is not None,
                            f"{keyword} regex {condition.regex!r}", 3))
    if condition.not_regex is not None:
        avoid = re.compile(condition.not_regex).search
        checks.append(Check(lambda _a, h: keyword not in h or avoid(h[keyword].text) is None,
                            f"{keyword} not_regex {condition.not_regex!r}", 3))
    return checks


def _in_check(keyword: str, wanted: list[str | int | float], shown: str) -> Check:
    texts = frozenset(str(v).strip() for v in wanted)
    numbers = frozenset(float(v) for v in wanted
                        if isinstance(v, int | float) and not isinstance(v, bool))

    def test(_arrival: Arrival, view: View) -> bool:
        found = view.get(keyword)
        if found is None:
            return False
        return (found.text in texts or not texts.isdisjoint(found.values)
                or (bool(numbers) and not numbers.isdisjoint(map(_number, found.values))))

    return Check(test, f"{keyword} {shown}", 1)


def _range_check(keyword: str, bound: str, limit: float) -> Check:
    def test(_arrival: Arrival, view: View) -> bool:
        found = view.get(keyword)
        if found is None:
            return False
        numbers = [_number(v) for v in found.values]
        if None in numbers:
            return False
        return all((n >= limit if bound == "min" else n <= limit)  # type: ignore[operator]
                   for n in numbers)

    return Check(test, f"{keyword} {bound} {limit:g}", 2)


def _arrival_checks(match: Match) -> list[Check]:
    checks = []
    if match.source is not None:
        sources = frozenset(s.value for s in match.source)
        checks.append(Check(lambda a, _h: a.source in sources,
                            f"source in {sorted(sources)}", 0))
    if match.calling_ae is not None:
        aes = frozenset(match.calling_ae)
        checks.append(Check(lambda a, _h: a.calling_ae in aes, f"calling_ae in {sorted(aes)}", 0))
    if match.incoming_subdir is not None:
        subdirs = frozenset(match.incoming_subdir)
        checks.append(Check(lambda a, _h: a.incoming_subdir in subdirs,
                            f"incoming_subdir in {sorted(subdirs)}", 0))
    return checks


def compile_match(match: Match) -> tuple[Check, ...]:
    checks = _arrival_checks(match)
    for keyword, condition in match.header.items():
        checks.extend(_header_checks(keyword, condition))
    return tuple(sorted(checks, key=lambda c: c.cost))


@dataclass(frozen=True)
class Decision:
    project: str | None  # None: no project takes the series
    failed: tuple[tuple[str, str], ...]  # each earlier project and the condition that failed


class Router:
    """Projects' conditions, compiled once. A condition several projects share (the same
    attribute, test and value) is evaluated once per series, when first needed."""

    def __init__(self, projects: Iterable[Project]) -> None:
        projects = list(projects)
        self.keywords = frozenset(k for p in projects for k in p.match.header)
        self._checks: list[Check] = []
        index: dict[str, int] = {}
        self._rules: list[tuple[str, tuple[int, ...]]] = []
        for project in projects:
            ids = []
            for check in compile_match(project.match):
                if check.describe not in index:
                    index[check.describe] = len(self._checks)
                    self._checks.append(check)
                ids.append(index[check.describe])
            self._rules.append((project.name, tuple(ids)))

    def conditions(self, name: str) -> list[str]:
        """A project's conditions in words (the rules, never a value of a series)."""
        return [self._checks[i].describe for n, ids in self._rules if n == name for i in ids]

    def _first(self, arrival: Arrival, header: HeaderValues, failed: list[tuple[str, str]] | None
               ) -> str | None:
        view = view_of(header, self.keywords)
        checks = self._checks
        known: list[bool | None] = [None] * len(checks)
        for name, ids in self._rules:
            for i in ids:
                held = known[i]
                if held is None:
                    held = known[i] = checks[i].test(arrival, view)
                if not held:
                    if failed is not None:
                        failed.append((name, checks[i].describe))
                    break
            else:
                return name
        return None

    def route(self, arrival: Arrival, header: HeaderValues) -> str | None:
        """The name of the first project whose every condition holds, or None."""
        return self._first(arrival, header, None)

    def explain(self, arrival: Arrival, header: HeaderValues) -> Decision:
        """As `route`, with the condition that turned each earlier project away."""
        failed: list[tuple[str, str]] = []
        return Decision(self._first(arrival, header, failed), tuple(failed))
