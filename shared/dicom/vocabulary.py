"""The VR vocabulary (PS3.5 6.2) and the tags that give a dataset its
structure, defined once. VR sets come from pydicom's own definitions."""

from __future__ import annotations

from pydicom.valuerep import (
    ALLOW_BACKSLASH,
    BYTES_VR,
    EXPLICIT_VR_LENGTH_32,
    FLOAT_VR,
    INT_VR,
    STR_VR,
    VR,
)


def _names(vrs) -> frozenset[str]:
    return frozenset(str(vr) for vr in vrs)


# Every VR a file can carry ("US or SS" and the like are the dictionary's, not a file's).
KNOWN_VRS = frozenset(vr.value for vr in VR if " or " not in vr.value)
# VRs whose explicit VR element header has a 32-bit length (PS3.5 7.1.2).
LONG_LENGTH_VRS = _names(EXPLICIT_VR_LENGTH_32)
# Values stored as character strings.
STRING_VRS = _names(STR_VR)
# Character strings where a backslash is text, not a value separator; UR
# cannot hold a backslash at all, so it is never split either.
SINGLE_VALUE_VRS = (_names(ALLOW_BACKSLASH) & STRING_VRS) | {"UR"}
# Strings a person writes: names, descriptions, comments (any of them may hold
# an identifier); the other string VRs have a fixed form (codes, dates, UIDs...).
FREE_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
# Binary values: bytes or words the dictionary does not interpret.
BYTES_VRS = _names(BYTES_VR)
# Numbers, binary (IS and DS are strings) or in arrays.
BINARY_NUMBER_VRS = (_names(INT_VR) | _names(FLOAT_VR)) - STRING_VRS
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d",
                  "UV": "Q", "SV": "q"}

ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
# Float, Double Float and plain Pixel Data: the image, never part of a header.
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
FIRST_PIXEL_TAG, LAST_PIXEL_TAG = 0x7FE00008, 0x7FE00010
PIXEL_DATA = LAST_PIXEL_TAG
SPECIFIC_CHARACTER_SET = 0x00080005
SOP_INSTANCE_UID = 0x00080018
TRANSFER_SYNTAX = 0x00020010
MEDIA_SOP_INSTANCE_UID = 0x00020003
