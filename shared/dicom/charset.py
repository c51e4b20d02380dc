"""Text in a dataset's character set (Specific Character Set, PS3.5 6.1).

Most files use one codec without code extensions (the default repertoire,
Latin-1, UTF-8...): a value is decoded whole and split on backslash, which
is what makes reading a header cheap. Every other set (ISO 2022 code
extensions, ISO_IR 13, whose multi-byte neighbours can hold 0x5C) is decoded
and encoded by pydicom's charset module, value by value as pydicom does.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

from pydicom.charset import convert_encodings, decode_bytes, encode_string, python_encoding
from pydicom.valuerep import TEXT_VR_DELIMS, PersonName

from .vocabulary import SINGLE_VALUE_VRS

# Terms that name one codec in which a backslash byte is always a backslash.
_WHOLE_VALUE = {term: codec for term, codec in python_encoding.items()
                if not term.startswith("ISO 2022") and codec != "shift_jis"}


class Charset:
    """The text codec of a dataset (or of a sequence item that sets its own).
    Made only by `charset_of`, which keeps one per set: identity is equality,
    and hashing one (a key of every value the leak guard remembers) is cheap."""

    __slots__ = ("codec", "encodings", "terms")

    def __init__(self, terms: tuple[str, ...]):
        self.terms = terms
        self.codec = _WHOLE_VALUE.get(terms[0]) if len(terms) == 1 else None
        with warnings.catch_warnings():  # an unknown term falls back to the default
            warnings.simplefilter("ignore")
            self.encodings = convert_encodings(list(terms))

    def __repr__(self) -> str:
        return f"Charset({self.terms!r})"

    def decode(self, value: bytes) -> str:
        """A whole value as text (all its values, backslashes kept), for searching."""
        if self.codec is not None:
            return value.decode(self.codec, "replace")
        return decode_bytes(value, self.encodings, TEXT_VR_DELIMS)

    def values(self, vr: str, value: bytes) -> list[str]:
        """The values of a string element, trailing padding removed."""
        if self.codec is not None:
            text = value.decode(self.codec, "replace").rstrip("\x00 ")
            if not text:
                return []
            return [text] if vr in SINGLE_VALUE_VRS else text.split("\\")
        if not value.rstrip(b"\x00 "):
            return []
        parts = [value] if vr in SINGLE_VALUE_VRS else value.split(b"\\")
        if vr == "PN":
            return [str(PersonName(p, self.encodings)).rstrip("\x00 ") for p in parts]
        return [decode_bytes(p, self.encodings, TEXT_VR_DELIMS).rstrip("\x00 ") for p in parts]

    def encode(self, vr: str, values: list[str]) -> bytes:
        """Values joined on backslash, padded to even length (UI with NUL). A
        character the set cannot hold is written as pydicom writes it: replaced,
        never dropped silently into another set."""
        data = None
        if self.codec is not None:
            try:
                data = "\\".join(values).encode(self.codec)
            except UnicodeEncodeError:
                data = None
        if data is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = b"\\".join(self._encode_one(vr, v) for v in values)
        if len(data) % 2:
            data += b"\x00" if vr == "UI" else b" "
        return data

    def _encode_one(self, vr: str, value: str) -> bytes:
        if vr == "PN":
            return PersonName(value).encode(self.encodings)
        return encode_string(value, self.encodings)


@lru_cache(maxsize=64)
def charset_of(value: bytes) -> Charset:
    """The Charset a Specific Character Set value names ('' is the default)."""
    text = value.decode("ascii", "replace").rstrip("\x00 ")
    terms = tuple(t.strip() for t in text.split("\\")) if text else ("",)
    if len(terms) > 1 and not terms[0]:  # the default repertoire, with code extensions
        terms = ("ISO 2022 IR 6", *terms[1:])
    return Charset(terms)


DEFAULT = charset_of(b"")
