"""Bearer tokens with roles. Only SHA-256 hashes of tokens are configured or kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Ordered: each role may do what the ones below it may."""

    READER = 1
    OPERATOR = 2
    ADMIN = 3


class TokenConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TokenEntry:
    role: Role
    sha256_hex: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_entries(entries: list[str]) -> list[TokenEntry]:
    parsed = []
    for position, entry in enumerate(entries, start=1):
        role, _, digest = entry.partition(":")
        try:
            parsed_role = Role[role.strip().upper()]
        except KeyError:
            raise TokenConfigError(
                f"RELAY_API_TOKENS entry {position}: unknown role {role!r} "
                "(expected reader, operator or admin)") from None
        digest = digest.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise TokenConfigError(
                f"RELAY_API_TOKENS entry {position}: expected ROLE:SHA256HEX, the hex "
                "SHA-256 of the token (64 hex digits); make one with `relay token new`")
        parsed.append(TokenEntry(parsed_role, digest))
    return parsed


def role_for(token: str, entries: list[TokenEntry]) -> Role | None:
    digest = hash_token(token)
    found = None
    for entry in entries:
        # Compare every entry, in constant time, so timing tells nothing about the list.
        if hmac.compare_digest(digest, entry.sha256_hex):
            found = entry.role if found is None else max(found, entry.role)
    return found


def new_token() -> str:
    return secrets.token_urlsafe(32)
