"""Where the step's decisions are kept: on the Image row, in the series audit,
and the held output in the quarantine folder until a person releases it."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from relay_shared import series_state
from relay_shared.models import Image, Status
from relay_shared.paths import WorkStore

from .policy import PixelOutcome

HELD_DIR = "held-pixels"


def record(image: Image, outcome: PixelOutcome | None, store: WorkStore) -> None:
    """Put the decision on `image`; a held image becomes QUARANTINED and its
    output leaves the folder the sender reads."""
    if outcome is None:
        return
    image.pixel_flag = outcome.flag[:128]
    image.pixel_redacted = outcome.redacted
    image.pixel_gate = outcome.gate
    image.pixel_reason = outcome.reason
    if outcome.held and image.status is Status.DONEPROCESSING:
        assert image.id is not None
        series_state.image_to(image, Status.QUARANTINED, f"burned-in text: {outcome.reason}")
        image.quarantine_path = hold(store, image.series_id, image.id)


def hold(store: WorkStore, series_id: int, image_id: int) -> str | None:
    output = store.deidentified(series_id, image_id)
    if not output.exists():
        return None
    target = held_path(store, series_id, image_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    return str(shutil.move(output, target))


def held_path(store: WorkStore, series_id: int, image_id: int) -> Path:
    return store.quarantine_for(series_id) / HELD_DIR / f"{image_id}.dcm"


def release(store: WorkStore, image: Image) -> None:
    """Put a held image's output back where the sender reads it."""
    assert image.id is not None
    held = Path(image.quarantine_path) if image.quarantine_path else None
    if held is None or not held.exists():
        raise FileNotFoundError("the held image's file is gone (purged by retention?)")
    target = store.deidentified(image.series_id, image.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(held, target)
    image.quarantine_path = None


def counts(outcomes: Iterable[PixelOutcome | None]) -> dict[str, int]:
    """Per series: images flagged, redacted, passed by the gate, held, not read (OCR off)."""
    tally: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome is None:
            continue
        tally["flagged"] += 1
        tally["redacted"] += outcome.redacted
        tally[{"passed": "passed", "held": "held", "off": "ocr_off"}[outcome.gate]] += 1
    return {k: tally[k] for k in ("flagged", "redacted", "passed", "held", "ocr_off")}
