"""Who is calling: a machine token of RELAY_API_TOKENS, an access token of the
hospital's identity provider (a JWT), or a dashboard session cookie.

Each refusal says which check failed, and is reported to `on_refused` (the audit
trail) with the caller's address; a token's value is never repeated anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from relay_api.auth import TokenEntry, entry_for
from relay_api.oidc import NoRole, Provider, TokenRefused, User, looks_like_jwt

log = logging.getLogger(__name__)
Principal = TokenEntry | User


@dataclass(frozen=True)
class Refused(Exception):
    status: int
    detail: str


@dataclass(frozen=True)
class Attempt:
    """What the audit trail is told of a refused request."""

    reason: str
    address: str
    actor: str | None = None
    forbidden: bool = False


OnRefused = Callable[[Attempt], None]
SessionLookup = Callable[[str, bool], User | None]
NOT_VALID = "a valid bearer token is required"


class Authenticator:
    def __init__(self, tokens: list[TokenEntry], provider: Provider | None,
                 audience: str | None, on_refused: OnRefused | None = None,
                 sessions: SessionLookup | None = None) -> None:
        self._tokens = tokens
        self._provider = provider
        self._audience = audience
        self._on_refused = on_refused
        self._sessions = sessions

    async def bearer(self, token: str, address: str) -> Principal:
        if self._provider is not None and self._audience and looks_like_jwt(token):
            return await self._jwt(token, address)
        entry = entry_for(token, self._tokens)
        if entry is None:
            await self._refused(Attempt("unknown API token", address))
            raise Refused(401, NOT_VALID)
        return entry

    async def _jwt(self, token: str, address: str) -> User:
        assert self._provider is not None and self._audience is not None
        try:
            claims = await asyncio.to_thread(self._provider.verify, token, self._audience)
            return self._provider.user(claims)
        except TokenRefused as exc:
            await self._refused(Attempt(f"identity provider token refused: {exc.reason}",
                                        address))
            raise Refused(401, f"the access token is refused: {exc.reason}") from None
        except NoRole as exc:
            await self._refused(Attempt(exc.reason, address, exc.name, forbidden=True))
            raise Refused(403, exc.reason) from None
        except Exception:
            # The provider cannot be reached: nobody is let in on a guess.
            log.warning("identity provider unreachable", exc_info=True)
            await self._refused(Attempt("identity provider unreachable", address))
            raise Refused(401, "the identity provider cannot be reached to check the "
                          "access token") from None

    async def session(self, cookie: str, active: bool) -> User | None:
        if self._sessions is None:
            return None
        return await asyncio.to_thread(self._sessions, cookie, active)

    async def _refused(self, attempt: Attempt) -> None:
        if self._on_refused is None:
            return
        try:
            await asyncio.to_thread(self._on_refused, attempt)
        except Exception:  # the caller is refused all the same, and the log says so
            log.exception("could not record a refused request in the audit trail",
                          extra={"address": attempt.address})

