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

from .schema import Condition, Match, Project

# What the router is given for one series: each attribute's values as text.
HeaderValues = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Arrival:
    """How a series came in, recorded by ingest."""

    source: str  # scp, folder, follow, collect
    calling_ae: str | None = None
    incoming_subdir: str | None = None


Test = Callable[[Arrival, HeaderValues], bool]


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


def _equal_set(values: Iterable[object]) -> tuple[frozenset[str], frozenset[float]]:
    texts = frozenset(str(v).strip() for v in values)
    numbers = frozenset(float(v) for v in values if isinstance(v, int | float)
                        and not isinstance(v, bool))
    return texts, numbers


def _header_checks(keyword: str, condition: Condition) -> list[Check]:
    checks: list[Check] = []
    if condition.present is not None:
        wanted = condition.present
        checks.append(Check(lambda _a, h: bool(h.get(keyword)) is wanted,
                            f"{keyword} present: {str(wanted).lower()}", 0))
    for name, values in (("equals", None if condition.equals is None else [condition.equals]),
                         ("in", condition.in_)):
        if values is not None:
            checks.append(_in_check(keyword, name, values))
    for bound in ("min", "max"):
        limit = getattr(condition, bound)
        if limit is not None:
            checks.append(_range_check(keyword, bound, limit))
    if condition.regex is not None:
        search = re.compile(condition.regex).search
        checks.append(Check(lambda _a, h: bool(h.get(keyword)) and
                            search("\\".join(h[keyword])) is not None,
                            f"{keyword} regex {condition.regex!r}", 3))
    if condition.not_regex is not None:
        avoid = re.compile(condition.not_regex).search
        checks.append(Check(lambda _a, h: avoid("\\".join(h.get(keyword, ()))) is None,
                            f"{keyword} not_regex {condition.not_regex!r}", 3))
    return checks


def _in_check(keyword: str, name: str, values: list[str | int | float]) -> Check:
    texts, numbers = _equal_set(values)

    def test(_arrival: Arrival, header: HeaderValues) -> bool:
        found = header.get(keyword)
        if not found:
            return False
        if "\\".join(found) in texts or any(v in texts for v in found):
            return True
        return bool(numbers) and any(_number(v) in numbers for v in found)

    shown = values[0] if name == "equals" else values
    return Check(test, f"{keyword} {name} {shown!r}", 1)


def _range_check(keyword: str, bound: str, limit: float) -> Check:
    def within(value: str) -> bool:
        number = _number(value)
        return number is not None and (number >= limit if bound == "min" else number <= limit)

    return Check(lambda _a, h: bool(h.get(keyword)) and all(within(v) for v in h[keyword]),
                 f"{keyword} {bound} {limit:g}", 2)


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
    def __init__(self, projects: Iterable[Project]) -> None:
        projects = list(projects)
        self._rules = [(p.name, compile_match(p.match)) for p in projects]
        self.keywords = frozenset(k for p in projects for k in p.match.header)

    def route(self, arrival: Arrival, header: HeaderValues) -> str | None:
        """The name of the first project whose every condition holds, or None."""
        for name, checks in self._rules:
            for check in checks:
                if not check.test(arrival, header):
                    break
            else:
                return name
        return None

    def explain(self, arrival: Arrival, header: HeaderValues) -> Decision:
        """As `route`, with the condition that turned each earlier project away."""
        failed: list[tuple[str, str]] = []
        for name, checks in self._rules:
            miss = next((c for c in checks if not c.test(arrival, header)), None)
            if miss is None:
                return Decision(name, tuple(failed))
            failed.append((name, miss.describe))
        return Decision(None, tuple(failed))
