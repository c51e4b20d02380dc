"""Burned-in text: which images may carry text in their pixels, region rules
that black it out (versioned data, extendable by operators), and an OCR gate
that holds an image whose pixels still show an identifying value.

Pure except `frames` (reads and writes files), `ocr` (runs Tesseract) and
`records` (moves held files).
"""

from .assess import Assessment
from .frames import Unredactable
from .ocr import OcrUnavailable
from .policy import PixelOutcome, PixelPolicy
from .records import counts, record, release
from .rules import PixelRulesError, Rules, load_rules

__all__ = [
    "Assessment",
    "OcrUnavailable",
    "PixelOutcome",
    "PixelPolicy",
    "PixelRulesError",
    "Rules",
    "Unredactable",
    "counts",
    "load_rules",
    "record",
    "release",
]
