"""The text gate: read what text is left in an image's pixels (Tesseract) and
decide whether it may go.

Held when the text holds one of the series' original identifying values
(names, IDs, dates, institution...), or, in "any text" mode, when it holds
any legible word at all. OCR misreads, so values are compared after folding
the characters it confuses (O/0, I/1, S/5, B/8) and dates in the usual
written forms; a miss here is a leak, a false hold costs a person a look.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from relay_shared.deid import IdentifyingValues

MAX_FRAMES = 8  # frames read per image, spread over a cine loop; burned-in text is static
CONFIDENT = 60  # Tesseract's word confidence, 0-100, above which a word counts as text
MIN_WORD = 3
TEXT_LEVEL = 0.5  # of full brightness: below it is image, not annotation
GAP = 16  # rows of background between stacked frames
FOLD = str.maketrans("OILSB|", "011580")
MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_YMD = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_DMY = re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b")
_DMONY = re.compile(r"\b(\d{1,2})[-/. ]?([A-Z]{3})[A-Z]*[-/. ]?(\d{4})\b")
_COMPACT = re.compile(r"\b(\d{8})\b")


class OcrUnavailable(RuntimeError):
    """Tesseract is not installed or does not run."""


@dataclass(frozen=True)
class GateResult:
    held: bool
    reason: str
    # Where the words were read, [x, y, width, height] on the frame: what a region
    # rule for the device would have to black out.
    text_boxes: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float
    box: tuple[int, int, int, int]  # x, y, width, height on the frame


def check_tesseract() -> str:
    """Tesseract's version, or OcrUnavailable with what to install. The gate reads
    with Tesseract's default language, English, whose data is packaged apart."""
    import pytesseract

    try:
        version = str(pytesseract.get_tesseract_version())
        languages = pytesseract.get_languages()
    except Exception as exc:
        raise OcrUnavailable("the OCR gate needs Tesseract (Debian: apt-get install "
                             f"tesseract-ocr): {type(exc).__name__}") from None
    if "eng" not in languages:
        raise OcrUnavailable("the OCR gate needs Tesseract's English data (Debian: "
                             "apt-get install tesseract-ocr-eng)")
    return version


def gate(display: np.ndarray, originals: IdentifyingValues, any_text: bool) -> GateResult:
    """`display`: (frames, rows, cols) brightness from 0 to 1, after redaction."""
    found = read_words_at(display)
    words = [(w.text, w.confidence) for w in found]
    boxes = tuple(w.box for w in found if any(c.isalnum() for c in w.text))
    hit = identifying_kind(" ".join(w for w, _ in words), originals)
    if hit:
        return GateResult(True, f"OCR found text matching an original {hit} in the pixels",
                          boxes)
    legible = [w for w, conf in words
               if conf >= CONFIDENT and sum(c.isalnum() for c in w) >= MIN_WORD]
    if any_text and legible:
        return GateResult(True, f"OCR found {len(legible)} legible word(s) in the pixels "
                                "and any text is held", boxes)
    if legible:
        return GateResult(False, f"OCR found {len(legible)} word(s), none identifying")
    return GateResult(False, "OCR found no legible text")


def read_words_at(display: np.ndarray) -> list[Word]:
    import pytesseract
    from PIL import Image

    # Workers scale by processes; Tesseract's own threads would only contend with them.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    sheet = _contact_sheet(display)
    if sheet.min() == 255:  # nothing bright enough left to be text: no need to ask
        return []
    data = pytesseract.image_to_data(Image.fromarray(sheet), config="--psm 11",
                                     output_type=pytesseract.Output.DICT)
    rows = display.shape[1]
    return [Word(str(text).strip(), float(conf), _on_frame(box, rows))
            for text, conf, *box in zip(data["text"], data["conf"], data["left"], data["top"],
                                        data["width"], data["height"], strict=True)
            if str(text).strip()]


def _on_frame(box: list[int], rows: int) -> tuple[int, int, int, int]:
    """A box on the contact sheet as a box on the frame it was read from: burned-in
    text stands at the same place on every frame."""
    x, y, width, height = (int(v) for v in box)
    top = y % (rows + GAP)
    return x, min(top, rows - 1), width, max(1, min(height, rows - top))


def _contact_sheet(display: np.ndarray) -> np.ndarray:
    """The frames to read, stacked into one 8-bit picture: one Tesseract run per image
    (starting it costs more than reading a frame). Inverted, since Tesseract reads
    dark text on light ground best and burned-in text is light on dark."""
    count = display.shape[0]
    picks = sorted({round(i * (count - 1) / max(MAX_FRAMES - 1, 1))
                    for i in range(min(count, MAX_FRAMES))})
    parts = []
    for index in picks:
        scaled = np.clip(display[index], 0, 1) * 255.0
        # Burned-in text is drawn bright; dimmer speckle only makes Tesseract hunt
        # for letters in noise (seconds per frame), so it is flattened to ground.
        scaled[scaled < TEXT_LEVEL * 255] = 0
        parts.append(255 - scaled.astype(np.uint8))
        parts.append(np.full((GAP, scaled.shape[1]), 255, np.uint8))
    return np.vstack(parts[:-1])


def identifying_kind(text: str, originals: IdentifyingValues) -> str | None:
    """What kind of original `text` holds ("name or text", "date", "UID"), or None."""
    if not text.strip():
        return None
    upper = text.upper()
    if originals.search(upper) or _folded_match(upper, originals):
        return "name or identifier"
    if _dates_in(upper) & originals.dates:
        return "date"
    return None


def _folded_match(upper: str, originals: IdentifyingValues) -> bool:
    tokens = {_fold(t) for t in re.split(r"[\s,;:^]+", upper) if t}
    squeezed = _fold(re.sub(r"[\s,;:^]+", "", upper))
    for original in originals.texts | originals.words:
        folded = _fold(re.sub(r"[\s,;:^]+", "", original))
        if len(folded) < MIN_WORD:
            continue
        # Short values only as whole tokens, or "ANN" would be found in "SCANNER".
        if folded in tokens or (len(folded) >= 5 and folded in squeezed):
            return True
    return False


def _fold(text: str) -> str:
    return text.upper().translate(FOLD)


def _dates_in(upper: str) -> set[str]:
    found = set(_COMPACT.findall(upper))
    for y, m, d in _YMD.findall(upper):
        found.add(f"{y}{int(m):02d}{int(d):02d}")
    for a, b, y in _DMY.findall(upper):  # day-month and month-day are both in use
        found.add(f"{y}{int(b):02d}{int(a):02d}")
        found.add(f"{y}{int(a):02d}{int(b):02d}")
    for d, month, y in _DMONY.findall(upper):
        if month in MONTHS:
            found.add(f"{y}{MONTHS[month]:02d}{int(d):02d}")
    return found
