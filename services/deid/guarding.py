"""The independent guard on a de-identified series (`relay_shared.guard`).

Beside the leak check of the profile's own originals: the guard reads every
original itself, then every output, and reports what an output still gives
away. Its findings join the leak check's, so a value it finds quarantines the
series the same way; an image it cannot read fails alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from relay_shared.guard import Rules, SeriesGuard, Unreadable
from relay_shared.reasons import described

log = logging.getLogger(__name__)


class _Result(Protocol):
    image_id: int
    ok: bool


class _Store(Protocol):
    def original(self, series_id: int, image_id: int) -> Path: ...

    def deidentified(self, series_id: int, image_id: int) -> Path: ...


@dataclass
class GuardVerdict:
    """What the guard made of a series. `leaks`: 'image <id>: <path>: <rule>' for
    each value found, never the value; one quarantines the series. `unread`: image
    id to a fixed reason, for an image whose original or output the guard cannot
    read: it cannot clear that output, so that image fails, but nothing was found,
    and the rest of the series goes on (issue 18, build item 4)."""

    leaks: list[str] = field(default_factory=list)
    unread: dict[int, str] = field(default_factory=dict)


def guard_series(store: _Store, series_id: int, results: Iterable[_Result],
                 options: frozenset[str], date_shift_days: int | None,
                 rules: Rules | None = None) -> GuardVerdict:
    guard = SeriesGuard(options, date_shift_days, rules)
    results = list(results)
    verdict = GuardVerdict()
    for result in results:
        try:
            guard.add_original(store.original(series_id, result.image_id))
        except (Unreadable, OSError) as exc:
            # Its values are unknown to the guard; its output cannot be cleared. The
            # other outputs are still searched for the values of the originals the
            # guard did read, and for the profile's originals by the leak check.
            verdict.unread[result.image_id] = described("the guard cannot read the original",
                                                        exc)
    for result in results:
        if not result.ok or result.image_id in verdict.unread:
            continue
        try:
            found = guard.findings(store.deidentified(series_id, result.image_id))
        except Unreadable as exc:
            verdict.unread[result.image_id] = exc.reason
            continue
        verdict.leaks.extend(f"image {result.image_id}: guard: {finding}" for finding in found)
    if verdict.leaks:
        log.error("the guard found identifying content",
                  extra={"series_id": series_id, "findings": len(verdict.leaks)})
    if verdict.unread:
        log.warning("the guard cannot read some images; they fail",
                    extra={"series_id": series_id, "images": len(verdict.unread)})
    return verdict
