"""Bearer tokens with roles. Only SHA-256 hashes of tokens are configured or kept."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """A reader reads; an operator also retries and releases; a reviewer reads and
    decides whether series under review leave, and nothing an operator does (who
    signs a release off is not who runs the pipeline); an admin may do everything."""

    READER = 1
    OPERATOR = 2
    REVIEWER = 3
    ADMIN = 4

    def may(self, needed: Role) -> bool:
        return needed in GRANTS[self]


GRANTS: dict[Role, frozenset[Role]] = {
    Role.READER: frozenset({Role.READER}),
    Role.OPERATOR: frozenset({Role.READER, Role.OPERATOR}),
    Role.REVIEWER: frozenset({Role.READER, Role.REVIEWER}),
    Role.ADMIN: frozenset(Role),
}


class TokenConfigError(ValueError):
    pass


# A token's name travels into the audit trail and logs: letters, digits and a few marks.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class TokenEntry:
    role: Role
    sha256_hex: str
    name: str | None = None

    @property
    def label(self) -> str:
        """Who the audit trail says acted: the token's name, or, for an entry in the
        older unnamed ROLE:HEX form, its role and the start of its hash."""
        return self.name or f"unnamed-{self.role.name.lower()}-{self.sha256_hex[:8]}"

    @property
    def kind(self) -> str:
        return "token"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_entries(entries: list[str]) -> list[TokenEntry]:
    """`NAME:ROLE:SHA256HEX`, or the older unnamed `ROLE:SHA256HEX`."""
    parsed = [parse_entry(entry, position) for position, entry in enumerate(entries, start=1)]
    names = [e.name for e in parsed if e.name]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise TokenConfigError(f"RELAY_API_TOKENS: the name(s) {', '.join(doubled)} are used "
                               "by more than one token; the audit trail needs each to be one")
    return parsed


def parse_entry(entry: str, position: int) -> TokenEntry:
    parts = [part.strip() for part in entry.split(":")]
    name = parts.pop(0) if len(parts) == 3 else None
    where = f"RELAY_API_TOKENS entry {position}"
    if len(parts) != 2:
        raise TokenConfigError(f"{where}: expected NAME:ROLE:SHA256HEX; make one with "
                               "`relay token new --name NAME --role ROLE`")
    if name is not None and not NAME.match(name):
        raise TokenConfigError(f"{where}: a name is 1-64 letters, digits, '_', '.', '@', '-'")
    try:
        role = Role[parts[0].upper()]
    except KeyError:
        raise TokenConfigError(f"{where}: unknown role (expected reader, operator, reviewer "
                               "or admin)") from None
    digest = parts[1].lower()
    if not HEX64.match(digest):
        raise TokenConfigError(f"{where}: expected NAME:ROLE:SHA256HEX, the hex SHA-256 of "
                               "the token (64 hex digits); make one with `relay token new`")
    return TokenEntry(role, digest, name)


def entry_for(token: str, entries: list[TokenEntry]) -> TokenEntry | None:
    digest = hash_token(token)
    found = None
    for entry in entries:
        # Compare every entry, in constant time, so timing tells nothing about the list.
        if hmac.compare_digest(digest, entry.sha256_hex) and (
                found is None or entry.role > found.role):
            found = entry
    return found


def role_for(token: str, entries: list[TokenEntry]) -> Role | None:
    entry = entry_for(token, entries)
    return entry.role if entry else None


def new_token() -> str:
    return secrets.token_urlsafe(32)
