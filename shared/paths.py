"""Where files live. Named by database ids, so no path carries an identifying value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkStore:
    work_dir: Path
    quarantine_dir: Path

    @property
    def claimed_dir(self) -> Path:
        return self.work_dir / ".claimed"

    def series_dir(self, series_id: int) -> Path:
        return self.work_dir / f"series-{series_id}"

    def original(self, series_id: int, image_id: int) -> Path:
        return self.series_dir(series_id) / "original" / f"{image_id}.dcm"

    def deidentified(self, series_id: int, image_id: int) -> Path:
        return self.series_dir(series_id) / "deidentified" / f"{image_id}.dcm"

    def quarantine_for(self, series_id: int) -> Path:
        return self.quarantine_dir / f"series-{series_id}"
