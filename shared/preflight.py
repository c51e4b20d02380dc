"""What a service needs beyond its settings before it starts: external tools, their
data, and the pixel codecs. Each problem names the setting that asks for the tool and
the package that brings it, so a missing piece is one line at start, not a traceback
at the first image."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relay_shared.settings import Settings

# What the pixel step decodes (to look for burned-in text) and encodes back, losslessly.
DECODED = ("JPEGBaseline8Bit", "JPEGExtended12Bit", "JPEGLossless", "JPEGLosslessSV1",
           "JPEGLSLossless", "JPEGLSNearLossless", "JPEG2000Lossless", "JPEG2000",
           "RLELossless")
ENCODED = ("RLELossless", "JPEGLSLossless", "JPEG2000Lossless")
CODEC_PACKAGES = "pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls"


@dataclass(frozen=True)
class Problem:
    variable: str
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


def problems(settings: Settings, services: Iterable[str]) -> list[Problem]:
    """Every missing piece the given services would need with these settings."""
    found: list[Problem] = []
    if "deid" in services:
        found += _ocr(settings)
        found += _codecs()
    return found


def _ocr(settings: Settings) -> list[Problem]:
    from relay_shared.pixels import OcrUnavailable
    from relay_shared.pixels.ocr import check_tesseract

    if not settings.pixel_ocr:
        return []
    try:
        check_tesseract()
    except OcrUnavailable as exc:
        return [Problem("RELAY_PIXEL_OCR", f"{exc}; or set RELAY_PIXEL_OCR=false")]
    return []


def _codecs() -> list[Problem]:
    import pydicom.uid
    from pydicom.pixels import get_decoder, get_encoder

    missing = [f"decoding {name}" for name in DECODED
               if not get_decoder(getattr(pydicom.uid, name)).is_available]
    missing += [f"encoding {name}" for name in ENCODED
                if not get_encoder(getattr(pydicom.uid, name)).is_available]
    if not missing:
        return []
    return [Problem("pixel codecs", f"no codec for {', '.join(missing)} "
                                    f"(pip packages: {CODEC_PACKAGES})")]
