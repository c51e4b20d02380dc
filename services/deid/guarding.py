"""The independent guard on a de-identified series (`relay_shared.guard`).

Beside the leak check of the profile's own originals: the guard reads every
original itself, then every output, and reports what an output still gives
away. Its findings join the leak check's, so an instance it fails is
quarantined the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from relay_shared.guard import Rules, SeriesGuard, Unreadable

log = logging.getLogger(__name__)


class _Result(Protocol):
    image_id: int
    ok: bool


class _Store(Protocol):
    def original(self, series_id: int, image_id: int) -> Path: ...

    def deidentified(self, series_id: int, image_id: int) -> Path: ...


def guard_findings(store: _Store, series_id: int, results: Iterable[_Result],
                   options: frozenset[str], date_shift_days: int | None,
                   rules: Rules | None = None) -> list[str]:
    """'image <id>: <path>: <rule>' for each finding; never a value."""
    guard = SeriesGuard(options, date_shift_days, rules)
    results = list(results)
    unreadable: set[int] = set()
    for result in results:
        try:
            guard.add_original(store.original(series_id, result.image_id))
        except (Unreadable, OSError):
            # Its values are unknown to the guard; its output cannot be cleared.
            unreadable.add(result.image_id)
    findings: list[str] = []
    for result in results:
        if not result.ok:
            continue
        if result.image_id in unreadable:
            findings.append(f"image {result.image_id}: the guard cannot read its original")
            continue
        found = guard.check(store.deidentified(series_id, result.image_id))
        findings.extend(f"image {result.image_id}: guard: {finding}" for finding in found)
    if findings:
        log.error("the guard found identifying content",
                  extra={"series_id": series_id, "findings": len(findings)})
    return findings
