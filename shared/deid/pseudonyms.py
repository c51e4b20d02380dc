"""Replacement identity for a patient, and the local keyed pseudonymizer.

Everything a pseudonym is made of comes from HMAC-SHA256 with a secret, so the
same patient gets the same pseudonym, date shift and UIDs in every process,
on every restart, as long as the secret is the same. The key id travels with
the results so a rotated secret never gets confused with the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

# Dates move back by 1 to MAX_SHIFT_DAYS days: never 0 (that would keep the
# real dates) and never into the future.
MAX_SHIFT_DAYS = 730


@dataclass(frozen=True)
class Identifiers:
    """Replacement identity for one patient (pure data, safe to log except
    nothing here is original: every field is a replacement)."""

    patient_id: str
    patient_name: str
    date_shift_days: int
    key_id: str
    accession_number: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.patient_id, self.patient_name, self.date_shift_days, self.key_id))

    def digest(self) -> str:
        """sha256 of the identifiers, for the audit record."""
        parts = [self.patient_id, self.patient_name, str(self.date_shift_days), self.key_id,
                 self.accession_number or ""]
        parts += [f"{k}={v}" for k, v in sorted(self.extra.items())]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def normalise_id(value: str) -> str:
    """Case and spacing do not make another patient."""
    return " ".join(str(value).split()).upper()


def normalise_name(value: str) -> str:
    """'Doe ^ John^^' and 'DOE^JOHN' are one person: components trimmed, inner
    spaces collapsed, upper case, empty trailing components dropped."""
    components = [" ".join(c.split()).upper() for c in str(value).split("^")]
    while components and not components[-1]:
        components.pop()
    return "^".join(components)


class Pseudonymizer:
    """Local keyed pseudonymizer: pure functions of (secret, original)."""

    def __init__(self, secret: bytes, key_id: str = "k1"):
        if len(secret) < 16:
            raise ValueError("the pseudonymization secret must be at least 16 bytes")
        self._secret = bytes(secret)
        self.key_id = key_id
        self._uid_cached = lru_cache(maxsize=1 << 16)(self._uid)

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r})"

    def _mac(self, purpose: str, value: str) -> bytes:
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def identifiers_for(self, patient_id: str, patient_name: str = "") -> Identifiers:
        """The patient is keyed by the normalised ID; the name only when there
        is no ID, so a misspelt or changed name never splits a patient."""
        nid = normalise_id(patient_id)
        key = f"id:{nid}" if nid else f"name:{normalise_name(patient_name)}"
        code = _b32(self._mac("patient", key))
        shift = int.from_bytes(self._mac("shift", key)[:8], "big") % MAX_SHIFT_DAYS
        return Identifiers(
            patient_id=f"PSN{code[:13]}",
            patient_name=f"PSEUDONYM^{code[:10]}",
            date_shift_days=-(shift + 1),
            key_id=self.key_id,
        )

    def uid(self, original_uid: str) -> str:
        """'2.25.' + a 128-bit integer laid out as an RFC 9562 version 8 UUID,
        so the result is a valid UUID-derived UID (PS3.5 B.2), 44 chars at most."""
        return self._uid_cached(str(original_uid).strip().rstrip("\x00"))

    def _uid(self, original_uid: str) -> str:
        raw = bytearray(self._mac("uid", original_uid)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC variant
        return "2.25." + str(int.from_bytes(raw, "big"))

    def text(self, value: str, length: int = 16) -> str:
        """Keyed hash of a free value, for the recipe's `hash` action."""
        return _b32(self._mac("text", str(value)))[:length]

    def code(self, scheme: str, value: str, length: int = 16) -> str:
        """Keyed pseudonym of a code of a local coding scheme: the same code
        gets the same pseudonym in every series; the scheme is part of the
        key, so one value in two local schemes stays two codes."""
        key = f"{scheme.strip().upper()}\x00{str(value).strip()}"
        return _b32(self._mac("code", key))[:length]


def _b32(digest: bytes) -> str:
    return base64.b32encode(digest).decode().rstrip("=")
