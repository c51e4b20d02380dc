"""Replacement values: dummies per VR and date shifting."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

# A dummy keeps the VR valid and the attribute present (PS3.15 "D") without
# carrying any information. Dates get a fixed day far from any real study.
DUMMY_TEXT = "ANONYMIZED"
DUMMY_BY_VR: dict[str, object] = {
    "PN": "ANONYMIZED",
    "LO": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "UT": DUMMY_TEXT,
    "UC": DUMMY_TEXT,
    "CS": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    "UR": "http://anonymized.invalid/",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "FL": 0.0,
    "FD": 0.0,
    "UV": 0,
    "SV": 0,
    "OB": b"\x00\x00",
    "OW": b"\x00\x00",
    "UN": b"\x00\x00",
}

def dummy_value(vr: str) -> object:
    return DUMMY_BY_VR.get(vr, "")


def shift_da(value: str, days: int) -> str:
    """Shift one DA value, or a DA range 'A-B'; an unreadable date becomes
    empty, because it cannot be shifted and may still identify."""
    value = value.strip()
    if "-" in value:
        return "-".join(shift_da(part, days) if part else "" for part in value.split("-"))
    if len(value) != 8 or not value.isdigit():
        return ""
    try:
        shifted = date(int(value[:4]), int(value[4:6]), int(value[6:8])) + timedelta(days=days)
    except ValueError:
        return ""
    return shifted.strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str:
    """Shift the date part of a DT; time of day, fraction and timezone offset
    stay, since a whole-day shift keeps every interval. A DT holding only a
    year or a month keeps that precision."""
    value = value.strip()
    if len(value) < 4 or not value[:4].isdigit():
        return ""
    if len(value) >= 8:
        head = shift_da(value[:8], days)
        return head + value[8:] if head else ""
    padded = shift_da((value + "0101")[:8] if len(value) == 4 else value + "01", days)
    return padded[: len(value)]


def shift_values(value: str | Iterable[object], vr: str, days: int) -> str | list[str]:
    shift = shift_da if vr == "DA" else shift_dt
    if isinstance(value, str):
        return shift(value, days)
    return [shift(str(v), days) for v in value]  # multi-valued
