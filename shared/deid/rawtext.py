"""Reading and writing text values without pydicom's element conversion.

pydicom converts a raw element into a DataElement (VR lookup, value
validation, PersonName objects) the first time it is touched, which costs
more than everything else the engine does to that element. For the
character sets that are a single byte-compatible codec (the default
repertoire, Latin-1, UTF-8) a text value is just bytes split on backslash,
so it is decoded and written back here. Anything else (ISO 2022 code
extensions, non-text VRs, elements already converted) goes through pydicom.
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

# pydicom's Python codec names for the character sets decoded here.
SIMPLE_CODECS = {"iso8859": "latin-1", "latin_1": "latin-1", "UTF8": "utf-8",
                 "utf_8": "utf-8", "ascii": "latin-1"}
TEXTUAL_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                         "ST", "TM", "UC", "UI", "UR", "UT"})
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})  # a backslash there is text


def codec_of(ds: Dataset) -> str | None:
    charsets = ds._character_set  # inherited from the enclosing dataset by pydicom
    if len(charsets) != 1:
        return None
    return SIMPLE_CODECS.get(charsets[0])


def read_values(ds: Dataset, tag: int, codec: str | None,
                known_vr: str | None) -> tuple[str, list[str]]:
    """(VR, the values as strings); numbers and bytes come back as str too."""
    raw = ds.get_item(tag)
    if codec is not None and type(raw) is RawDataElement:
        vr = raw.VR or known_vr
        if vr in TEXTUAL_VRS:
            text = (raw.value or b"").decode(codec, "replace").rstrip("\x00 ")
            if not text:
                return vr, []
            return vr, [text] if vr in SINGLE_VALUED else text.split("\\")
    elem = ds[tag]
    return elem.VR, _as_strings(elem.value)


def _as_strings(value: object) -> list[str]:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, tuple, MultiValue)):  # a PersonName iterates by character
        return [str(v) for v in value]
    return [str(value)]


def write_values(ds: Dataset, tag: int, vr: str, values: list[str], codec: str | None) -> None:
    """Replace the value; stays raw bytes when the element was raw."""
    raw = ds.get_item(tag)
    if codec is not None and type(raw) is RawDataElement and vr in TEXTUAL_VRS:
        try:
            data = "\\".join(values).encode(codec)
        except UnicodeEncodeError:
            data = None
        if data is not None:
            if len(data) % 2:
                data += b"\x00" if vr == "UI" else b" "
            ds[tag] = raw._replace(value=data, length=len(data))
            return
    elem = ds[tag]
    if not values:
        elem.value = None if vr in {"US", "SS", "UL", "SL", "FL", "FD"} else ""
    else:
        elem.value = values[0] if len(values) == 1 else values
