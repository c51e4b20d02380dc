"""The review gate: which de-identified series wait for a person before they leave:
none, all, or one in N (what the person is shown: `review_attributes`).

The sample is drawn by a keyed hash of the series (its de-identified UID) under the
project's pseudonym key, so the same series is always in or out of it: a retry, a
redelivery or a second worker decides as the first did, and nobody outside the
relay can predict or steer which series are looked at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_ONE_IN = 20


class ReviewMode(StrEnum):
    OFF = "off"
    ALL = "all"
    SAMPLE = "sample"


@dataclass(frozen=True)
class ReviewChoice:
    mode: ReviewMode = ReviewMode.OFF
    one_in: int = DEFAULT_ONE_IN

    def selects(self, series_key: str, keyed_hash: Callable[[str], str]) -> bool:
        """Whether the series of `series_key` waits for review. `keyed_hash` is the
        project's keyed hash of a text (its pseudonymizer's)."""
        if self.mode is ReviewMode.ALL:
            return True
        if self.mode is ReviewMode.OFF:
            return False
        digest = hashlib.sha256(keyed_hash(f"review-sample/{series_key}").encode()).digest()
        return int.from_bytes(digest[:8], "big") % max(self.one_in, 1) == 0

    def describe(self) -> str:
        if self.mode is ReviewMode.SAMPLE:
            return f"its project reviews a sample of one series in {self.one_in}"
        return f"its project reviews {self.mode.value} series"
