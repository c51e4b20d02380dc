"""The guard: an independent check of every de-identified output.

It shares no code with the profile that made the output (shared/deid): it
reads the original files itself to learn what to look for, reads each output
itself, and fails an instance that still holds an original value, an
identifying pattern in its free text, or a UID the relay did not mint. Its
rules are data (data/rules.yaml, data/attributes.yaml), listed in
docs/deidentification.md. A finding names the place and the rule, never the
value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .check import OUTPUT_SELECTION, Finding, Matchers, check_elements, minted, patterns_in
from .originals import Originals
from .rules import GuardRulesError, Rules, default_rules, load_rules
from .walk import Unreadable, read_elements

__all__ = ["Finding", "GuardRulesError", "Rules", "SeriesGuard", "Unreadable", "load_rules",
           "minted", "patterns_in"]


class SeriesGuard:
    """One series: its originals first (`add_original` for every instance),
    then each output (`check`)."""

    def __init__(self, options: frozenset[str] = frozenset(), date_shift_days: int | None = None,
                 rules: Rules | None = None, extra_id_patterns: Mapping[str, str] | None = None):
        if rules is None:
            rules = load_rules(extra_id_patterns) if extra_id_patterns else default_rules()
        self.originals = Originals(rules, frozenset(options))
        self._shift = date_shift_days
        self._matchers: Matchers | None = None

    def add_original(self, path: Path) -> None:
        """Raises `Unreadable` when the guard cannot read the original to its end."""
        self._matchers = None
        try:
            self.originals.add(read_elements(path, self.originals.selection))
        except Unreadable:
            raise
        except Exception as exc:  # any damage the walk did not name: still unreadable
            raise Unreadable(f"the original cannot be read ({type(exc).__name__})") from None

    def check(self, path: Path) -> list[Finding]:
        """What the output at `path` still gives away; an output the guard cannot
        read is a finding itself."""
        try:
            return self.findings(path)
        except Unreadable as exc:
            return [Finding("", exc.reason)]

    def findings(self, path: Path) -> list[Finding]:
        """What the output at `path` still gives away. Raises `Unreadable` (a fixed
        reason) for an output the guard cannot read or check: the caller fails
        that instance, which is not the same as finding a value in it."""
        if self._matchers is None:
            self._matchers = Matchers(self.originals, self._shift)
        try:
            elements = read_elements(path, OUTPUT_SELECTION)
        except Unreadable as exc:
            raise Unreadable(f"the guard cannot read the output: {exc.reason}") from None
        except Exception as exc:  # fail closed: what cannot be read cannot be cleared
            raise Unreadable(f"the guard cannot read the output ({type(exc).__name__})") \
                from None
        try:
            return check_elements(elements, self._matchers)
        except Exception as exc:
            raise Unreadable(f"the guard cannot check the output ({type(exc).__name__})") \
                from None
