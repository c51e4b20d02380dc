"""The relay's Ed25519 signing key, and signatures over canonical JSON.

A manifest is signed over its canonical form: the JSON object without its
`signature` member, serialised as RFC 8785 (JCS) prescribes. For the values a
manifest holds (ASCII keys, strings, integers, lists, objects, null; never a
float) that is: keys sorted, no whitespace, strings in UTF-8 with only `"`, `\\`
and control characters escaped. Python's `json.dumps(body, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode()` gives those bytes, so a
third party can check a manifest with any Ed25519 tool (docs/review.md).

The key id is the SHA-256 (hex) of the raw 32-byte public key: it names the key
and can be compared with the relay's `GET /api/v1/signing-key`, never the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from relay_shared.production import SigningSettings, require_signing_key

log = logging.getLogger(__name__)
ALGORITHM = "Ed25519"
PEM_START = "-----BEGIN"


class SigningKeyError(ValueError):
    """RELAY_SIGNING_KEY (or a public key given to verify) cannot be used; says why."""


class NotCanonical(ValueError):
    """A value JCS and Python would write differently (a float): never signed."""


def canonical(body: dict[str, Any]) -> bytes:
    _check_plain(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _check_plain(value: object) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise NotCanonical("a manifest key that is not ASCII text")
            _check_plain(item)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item)
    elif isinstance(value, float):
        raise NotCanonical("a float in a manifest (numbers are integers or text)")
    elif not (value is None or isinstance(value, str | int)):
        raise NotCanonical(f"a {type(value).__name__} in a manifest")


def key_id_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(public)).hexdigest()


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    # Derived from the deid secret (development without RELAY_SIGNING_KEY).
    derived: bool = False

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with its `signature` member; the body itself is not changed."""
        signature = self.private.sign(canonical(body))
        return {**body, "signature": {
            "algorithm": ALGORITHM, "key_id": self.key_id,
            "public_key": base64.b64encode(raw_public(self.public)).decode(),
            "value": base64.b64encode(signature).decode()}}


def new_private_pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def load_signing_key(value: str) -> SigningKey:
    """RELAY_SIGNING_KEY: the PEM text of an Ed25519 private key (PKCS#8, unencrypted),
    or the path of a file holding it."""
    text = _pem_text(value)
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError("RELAY_SIGNING_KEY: not an unencrypted PEM private key "
                              f"({type(exc).__name__}); make one with `relay signing-key new`"
                              ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("RELAY_SIGNING_KEY: the key is not an Ed25519 key")
    return SigningKey(key)


def _pem_text(value: str) -> str:
    """RELAY_SIGNING_KEY holds the PEM itself, or names the file that does."""
    text = value.strip()
    if text.startswith(PEM_START):
        return text
    try:
        return Path(text).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError("RELAY_SIGNING_KEY: neither a PEM key nor a readable PEM "
                              f"file ({type(exc).__name__})") from None


def derived_signing_key(deid_secret: bytes) -> SigningKey:
    """A laptop's convenience: every process of one relay derives the same key from the
    deid secret, so the api can serve the key the sender signs with."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"relay-manifest-signing",
                info=b"ed25519").derive(deid_secret)
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed), derived=True)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """A public key file (PEM), or a private one whose public half is meant."""
    try:
        key: object = serialization.load_pem_public_key(pem)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"not a PEM public key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("the public key is not an Ed25519 key")
    return key


def signature_problems(document: dict[str, Any], trusted: Ed25519PublicKey | None
                       ) -> tuple[list[str], str | None]:
    """What is wrong with the document's signature (nothing: it holds), and the key id it
    was checked against. Without `trusted`, the public key the document embeds is used,
    after checking it is the one its key id names."""
    signature = document.get("signature")
    if not isinstance(signature, dict):
        return ["the manifest has no signature"], None
    if signature.get("algorithm") != ALGORITHM:
        return [f"the signature is not {ALGORITHM}"], None
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        public = trusted or Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(signature.get("public_key", "")), validate=True))
    except ValueError:
        return ["the signature or its public key is not valid base64 of the right length"], None
    key_id = key_id_of(public)
    if signature.get("key_id") != key_id:
        where = "the given public key" if trusted else "the embedded public key"
        return [f"the manifest names key {signature.get('key_id')!r}, not {where} "
                f"({key_id})"], key_id
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        public.verify(value, canonical(body))
    except (InvalidSignature, NotCanonical):
        return ["the signature does not match the manifest's content"], key_id
    return [], key_id


class _Settings(SigningSettings, Protocol):
    @property
    def deid_secret(self) -> SecretStr: ...


def signing_key_for(settings: _Settings) -> SigningKey | None:
    """The key manifests are signed with; None when manifests are off."""
    if not settings.manifests:
        return None
    require_signing_key(settings)
    if settings.signing_key is not None:
        return load_signing_key(settings.signing_key.get_secret_value())
    log.warning("manifests are signed with a key derived from the deid secret: set "
                "RELAY_SIGNING_KEY for manifests a third party can rely on")
    return derived_signing_key(settings.deid_secret.get_secret_value().encode())


def public_key_for(settings: _Settings) -> tuple[Ed25519PublicKey, bool] | None:
    """The public key manifests are checked with, and whether it is the derived one. The
    api needs no more: RELAY_SIGNING_KEY may hold the public key alone for it."""
    if not settings.manifests:
        return None
    require_signing_key(settings)
    if settings.signing_key is None:
        return derived_signing_key(settings.deid_secret.get_secret_value().encode()).public, True
    text = _pem_text(settings.signing_key.get_secret_value())
    try:
        return load_public_key(text.encode()), False
    except SigningKeyError as exc:
        raise SigningKeyError(f"RELAY_SIGNING_KEY: {exc}") from None
