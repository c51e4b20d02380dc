"""The hospital's identity provider (OpenID Connect): its discovery document, its
signing keys, and what its tokens say about who is calling and with which role.

Tokens are verified with PyJWT against the provider's JWKS (fetched when first
needed, kept for RELAY_OIDC_JWKS_CACHE_SECONDS, fetched again when a token names
a key not seen yet, so a key rotation needs no restart): signature with an
allowed asymmetric algorithm only, issuer, audience, expiry. What a refusal says
names the check that failed, never a claim's value.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from relay_api.auth import Role
from relay_shared.reasons import RelayError
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
# Clocks of the provider and the relay may differ a little.
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


class TokenRefused(RelayError):
    """The token is not one the relay accepts; the reason says which check failed."""


class NoRole(RelayError):
    """A valid token, but none of its groups or roles gives a relay role."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class User:
    """A person signed in through the provider: its subject, the name the audit trail
    shows, and the relay role their groups give."""

    subject: str
    name: str
    role: Role

    @property
    def label(self) -> str:
        return self.name

    @property
    def kind(self) -> str:
        return "user"


def looks_like_jwt(token: str) -> bool:
    # The relay's own machine tokens are URL-safe base64 without dots.
    return token.count(".") == 2


class Provider:
    """The provider named by RELAY_OIDC_ISSUER, as one process sees it."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer is not None
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._settings = settings
        self._lock = threading.RLock()
        self._metadata: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    def ssl_context(self) -> ssl.SSLContext:
        ca = self._settings.oidc_ca_bundle or self._settings.tls_ca_bundle
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def http(self) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context(), timeout=self._settings.oidc_timeout)

    def metadata(self) -> dict[str, Any]:
        """The discovery document, read once; its issuer must be the one configured."""
        with self._lock:
            if self._metadata is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                with self.http() as client:
                    response = client.get(url)
                    response.raise_for_status()
                    document = response.json()
                if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                    raise TokenRefused("the provider's discovery document names another "
                                       "issuer than RELAY_OIDC_ISSUER")
                self._metadata = document
            return self._metadata

    def jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks is None:
                uri = self.metadata()["jwks_uri"]
                self._jwks = jwt.PyJWKClient(
                    uri, cache_jwk_set=True,
                    lifespan=int(self._settings.oidc_jwks_cache_seconds),
                    cooldown_duration=self._settings.oidc_jwks_refresh_cooldown,
                    timeout=int(self._settings.oidc_timeout), ssl_context=self.ssl_context())
            return self._jwks

    def verify(self, token: str, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The token's claims once every check passed; TokenRefused otherwise."""
        algorithms = self._settings.oidc_algorithms
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("not a JSON Web Token") from None
        if header.get("alg") not in algorithms:
            raise TokenRefused("signed with an algorithm not allowed "
                               f"(allowed: {', '.join(algorithms)})")
        try:
            key = self.jwks().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=algorithms, audience=audience, issuer=self.issuer,
                leeway=LEEWAY_SECONDS, options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise TokenRefused("expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("issued for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("its signature does not verify") from None
        except jwt.PyJWKClientError:
            raise TokenRefused("signed with a key the provider does not publish") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"not valid ({type(exc).__name__})") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise TokenRefused("its nonce is not the one this sign-in sent")
        return claims

    def user(self, claims: dict[str, Any]) -> User:
        """Who the claims name, with the highest role their groups give."""
        subject = str(claims["sub"])
        name = safe_name(str(claims.get(self._settings.oidc_name_claim)
                             or claims.get("email") or subject))
        role = role_of(claims, self._settings.oidc_role_claim, self._settings.oidc_role_map)
        if role is None:
            raise NoRole("none of the user's groups or roles gives a relay role "
                         f"(claim {self._settings.oidc_role_claim}, RELAY_OIDC_ROLE_MAP)", name)
        return User(subject=subject, name=name, role=role)


def claim_at(claims: dict[str, Any], path: str) -> object:
    """A claim by a dot path (`realm_access.roles`); a claim whose own name has dots
    (Okta's, a URL) is found by its whole name first."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def role_of(claims: dict[str, Any], claim: str, role_map: dict[str, str]) -> Role | None:
    value = claim_at(claims, claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles = []
    for item in (str(v) for v in values):
        name = role_map.get(item) if role_map else {"viewer": "reader"}.get(item.lower(),
                                                                            item.lower())
        if name and name.upper() in Role.__members__:
            roles.append(Role[name.upper()])
    return max(roles, default=None)


def safe_name(name: str) -> str:
    """A name for logs and the audit trail: printable, bounded."""
    cleaned = "".join(c for c in name if c.isprintable() and c not in "<>&\"'")
    return cleaned[:128] or "unnamed"
