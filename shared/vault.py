"""Original identifiers at rest: encrypted with a named key, so keys can rotate.

Keys come from RELAY_IDENTIFIER_KEYS ("id:base64-32-bytes,..."; the first one
encrypts, all of them decrypt). Without it, one key is derived from the deid
secret, under the deid key id, so a laptop needs no extra set-up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from relay_shared.reasons import RelayError


class VaultError(RelayError):
    pass


def derive_key(secret: bytes, key_id: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"relay-identifier-vault",
                info=key_id.encode())
    return base64.urlsafe_b64encode(hkdf.derive(secret))


def parse_keys(entries: list[str]) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, _, material = entry.partition(":")
        try:
            raw = base64.urlsafe_b64decode(material.strip() + "==")
        except ValueError:
            raw = b""
        if not key_id.strip() or len(raw) != 32:
            raise VaultError(f"RELAY_IDENTIFIER_KEYS entry {position}: expected "
                             "KEYID:BASE64 of 32 random bytes (openssl rand -base64 32)")
        keys[key_id.strip()] = base64.urlsafe_b64encode(raw)
    return keys


def _lookup_key(key: bytes, key_id: str) -> bytes:
    # Its own key, derived apart from the encryption key it comes from.
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"relay-vault-lookup",
                info=key_id.encode())
    return hkdf.derive(base64.urlsafe_b64decode(key))


class IdentifierVault:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise VaultError("the identifier vault needs at least one key")
        self._keys = {key_id: Fernet(key) for key_id, key in keys.items()}
        self._lookup_keys = [_lookup_key(key, key_id) for key_id, key in keys.items()]
        self.current_key_id = next(iter(keys))

    def lookup_digests(self, text: str) -> list[str]:
        """Keyed digests of `text` that find a sealed row again without opening it: the
        current key's first (to store), then every older key's (to match rows kept
        before a rotation)."""
        return [hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
                for key in self._lookup_keys]

    def seal(self, values: dict[str, str]) -> tuple[str, str]:
        """Encrypt with the current key; returns (key id, token)."""
        payload = json.dumps(values, sort_keys=True).encode()
        return self.current_key_id, self._keys[self.current_key_id].encrypt(payload).decode()

    def open(self, key_id: str, token: str) -> dict[str, str]:
        fernet = self._keys.get(key_id)
        if fernet is None:
            raise VaultError(f"key {key_id!r} is no longer configured")
        try:
            return dict(json.loads(fernet.decrypt(token.encode())))
        except InvalidToken:
            raise VaultError(f"the value does not open with key {key_id!r}") from None
