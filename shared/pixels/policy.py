"""One image through the burned-in text step: redact what the rules know of,
read what is left, decide whether it may go, and write the output.

Called by deid only for images `PixelPolicy.assess` flags; the others keep
the fast path (header de-identified, pixel data copied as bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from relay_shared.deid import Header, IdentifyingValues, Pseudonymizer
from relay_shared.deid.streamcopy import write_deidentified

from .assess import Assessment, assess
from .frames import Pixels, Unredactable, load_pixels, redact, write_pixels
from .learned import Proposal, propose
from .ocr import GateResult, check_tesseract, gate
from .rules import Box, Rules, load_rules

log = logging.getLogger(__name__)
CLEAN_PIXEL_CODE = ("113101", "DCM", "Clean Pixel Data Option")


class PixelSettings(Protocol):
    # Read-only: the settings object, or a project's frozen choice of them.
    @property
    def pixel_rules(self) -> Path | None: ...
    @property
    def pixel_ocr(self) -> bool: ...
    @property
    def pixel_ocr_off_modalities(self) -> list[str]: ...
    @property
    def pixel_ocr_any_text(self) -> bool: ...


@dataclass(frozen=True)
class PixelOutcome:
    """What the step decided for one image; `gate` is "passed", "held" or "off"."""

    flag: str
    redacted: bool
    gate: str
    reason: str
    syntax: str | None = None  # the transfer syntax written, when the pixels changed
    # A region rule for the device, when the gate held an image no rule covers.
    proposal: Proposal | None = None

    @property
    def held(self) -> bool:
        return self.gate == "held"


@dataclass(frozen=True)
class PixelPolicy:
    rules: Rules = field(default_factory=load_rules)
    ocr: bool = True
    ocr_off_modalities: frozenset[str] = frozenset()
    any_text: bool = False

    @classmethod
    def from_settings(cls, settings: PixelSettings) -> PixelPolicy:
        """Loads and checks the rules, and that Tesseract runs if OCR is on:
        a mistake stops the service at start, not an image later."""
        if settings.pixel_ocr:
            check_tesseract()
        return cls(load_rules(settings.pixel_rules), settings.pixel_ocr,
                   frozenset(m.upper() for m in settings.pixel_ocr_off_modalities),
                   settings.pixel_ocr_any_text)

    def assess(self, original_header: Header | Dataset) -> Assessment:
        return assess(original_header, self.rules)

    def process(self, assessment: Assessment, source: Path, target: Path,
                header: Header | Dataset,
                originals: IdentifyingValues | Iterable[IdentifyingValues | None],
                pseudonymizer: Pseudonymizer) -> PixelOutcome:
        """Write `target` from the de-identified `header` and `source`'s pixels.
        `originals`: the series' original values, or the sets that make them up."""
        originals = _merged(originals)
        try:
            pixels = load_pixels(source)
        except Unredactable as exc:
            write_deidentified(source, target, header)  # kept for a person to look at
            return PixelOutcome(assessment.reason or "", False, "held",
                                f"may hold text ({assessment.reason}) but {exc}")
        boxes = [box for rule in assessment.rules for box in rule.boxes]
        redacted = bool(boxes) and redact(pixels, boxes) > 0
        result = self._gate(assessment, pixels, originals)
        syntax = None
        if redacted:
            covers = any(rule.covers_text for rule in assessment.rules)
            syntax = self._write_redacted(header, pixels, target, pseudonymizer,
                                          covers and not result.held)
        else:
            write_deidentified(source, target, header)
        return PixelOutcome(assessment.reason or "", redacted,
                            "off" if result is OFF else "held" if result.held else "passed",
                            _describe(assessment, boxes if redacted else [], result), syntax,
                            propose(assessment, result))

    def _gate(self, assessment: Assessment, pixels: Pixels,
              originals: IdentifyingValues) -> GateResult:
        if not self.ocr or assessment.modality in self.ocr_off_modalities:
            return OFF
        return gate(pixels.display(), originals, self.any_text)

    def _write_redacted(self, header: Header | Dataset, pixels: Pixels, target: Path,
                        pseudonymizer: Pseudonymizer, text_gone: bool) -> str:
        ds = header.to_dataset() if isinstance(header, Header) else header
        # Changed pixel data is a new instance (PS3.3 C.12.1.1.1); derived from the
        # de-identified UID so that doing it again gives the same one.
        uid = UID(pseudonymizer.uid(f"{ds.SOPInstanceUID}/redacted-pixels"))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        if text_gone:
            ds.BurnedInAnnotation = "NO"
        _add_clean_pixel_code(ds)
        return str(write_pixels(ds, pixels, target))


OFF = GateResult(False, "OCR is off for this modality")


def _merged(originals: IdentifyingValues | Iterable[IdentifyingValues | None]
            ) -> IdentifyingValues:
    if isinstance(originals, IdentifyingValues):
        return originals
    merged = IdentifyingValues()
    for part in originals:
        if part is not None:
            merged.update(part)
    return merged


def _add_clean_pixel_code(ds: Dataset) -> None:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = CLEAN_PIXEL_CODE
    items = list(ds.get("DeidentificationMethodCodeSequence") or [])
    if not any(str(i.get("CodeValue", "")) == CLEAN_PIXEL_CODE[0] for i in items):
        ds.DeidentificationMethodCodeSequence = Sequence([*items, code])


def _describe(assessment: Assessment, boxes: list[Box], result: GateResult) -> str:
    parts = [f"may hold text: {assessment.reason}"]
    if boxes:
        names = ", ".join(r.name for r in assessment.rules)
        parts.append(f"redacted {len(boxes)} box(es) by {names}")
    else:
        parts.append("no region rule for this device")
    parts.append(result.reason)
    return "; ".join(parts)
