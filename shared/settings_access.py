"""Who may sign in, and where the audit trail goes: the settings of the hospital's
identity provider (OpenID Connect), of the dashboard's sessions and of the audit
messages sent to a SIEM over syslog. A part of the one settings object
(``relay_shared.settings.Settings`` inherits it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

# Signatures with a public key only: 'none' and the HMAC family (HS*) are never
# accepted, so a token signed with the provider's public key as an HMAC secret fails.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512", "EdDSA")
ROLE_NAMES = ("reader", "operator", "reviewer", "admin")
# What identity providers' groups often call the lowest role.
ROLE_ALIASES = {"viewer": "reader"}
SYSLOG_URL = re.compile(r"^(tls|tcp)://[^/:]+:\d{1,5}$")


def parse_role_map(value: object) -> object:
    """`group=role,group=role`: a group or claim value named in the provider's tokens,
    and the relay role it gives."""
    if not isinstance(value, str):
        return value
    mapping: dict[str, str] = {}
    for position, part in enumerate((p.strip() for p in value.split(",") if p.strip()), 1):
        group, sep, role = part.rpartition("=")
        role = ROLE_ALIASES.get(role.strip().lower(), role.strip().lower())
        if not sep or not group.strip():
            raise ValueError(f"entry {position} is not GROUP=ROLE")
        if role not in ROLE_NAMES:
            raise ValueError(f"entry {position}: unknown role {role!r} (expected reader, "
                             "viewer, operator, reviewer or admin)")
        mapping[group.strip()] = role
    return mapping


class AccessSettings(BaseSettings):
    # OpenID Connect: the issuer's discovery document names its endpoints and keys. The
    # dashboard signs people in with the authorization code flow and PKCE (a confidential
    # client when a secret is given); the API takes the provider's JWT access tokens for
    # the audience beside the relay's own machine tokens. Roles come from a claim (a dot
    # path, e.g. `realm_access.roles`), through the map when one is given, else by name.
    oidc_issuer: str | None = Field(None, pattern=r"^https?://")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_audience: str | None = None
    oidc_scopes: str = "openid profile"
    oidc_resource: str | None = None
    oidc_role_claim: str = Field("groups", pattern=r"^[A-Za-z0-9_:/.@-]{1,128}$")
    oidc_role_map: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    oidc_name_claim: str = Field("preferred_username", pattern=r"^[A-Za-z0-9_:/.@-]{1,128}$")
    oidc_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"])
    oidc_jwks_cache_seconds: float = Field(300.0, gt=0)
    # A token naming a key not seen yet fetches the keys again, at most this often, so
    # made-up key ids cannot turn the relay against the provider.
    oidc_jwks_refresh_cooldown: float = Field(30.0, ge=0)
    oidc_ca_bundle: Path | None = None
    oidc_timeout: float = Field(10.0, gt=0)
    # The address people reach the dashboard at, when a proxy stands in front of it:
    # the redirect URI registered with the provider is <this>/dashboard/callback.
    public_url: str | None = Field(None, pattern=r"^https?://[^?#]+$")
    # A dashboard session lasts this long at most, whatever the provider's tokens say.
    session_max_age: float = Field(8 * 3600.0, ge=60)
    # ... and ends sooner when the person has done nothing for this long: the console's
    # own refreshes do not count (an open tab on an unattended screen is not a person).
    session_idle_timeout: float = Field(30 * 60.0, ge=60)

    _role_map = field_validator("oidc_role_map", mode="before")(parse_role_map)

    @field_validator("oidc_algorithms", mode="before")
    @classmethod
    def _algorithm_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if refused or not value:
            raise ValueError(f"{refused or 'none'}: only {', '.join(ASYMMETRIC_ALGORITHMS)} "
                             "are accepted (never 'none' or a shared-secret HS algorithm)")
        return value

    @model_validator(mode="after")
    def _check_oidc(self) -> AccessSettings:
        if self.oidc_issuer and not self.oidc_client_id and not self.oidc_audience:
            raise ValueError("RELAY_OIDC_ISSUER needs RELAY_OIDC_CLIENT_ID (the dashboard's "
                             "sign-in) or RELAY_OIDC_AUDIENCE (API tokens only), or both")
        if (self.oidc_client_id or self.oidc_audience) and not self.oidc_issuer:
            raise ValueError("RELAY_OIDC_CLIENT_ID and RELAY_OIDC_AUDIENCE need "
                             "RELAY_OIDC_ISSUER")
        return self

    @property
    def oidc_api_audience(self) -> str | None:
        """The `aud` the provider's access tokens must carry for the relay's API."""
        return self.oidc_audience or self.oidc_client_id

    # The audit trail as DICOM audit messages (PS3.15 Annex A.5) over syslog (RFC 5424)
    # to a SIEM or an audit record repository: tls://host:port (RFC 5425, the IHE ATNA
    # way; the CA that signs its certificate, and this node's own certificate when it
    # asks for one) or tcp:// (RFC 6587, never in production). Sent from a bounded queue
    # by a thread: a slow or absent receiver never holds a request up.
    audit_syslog: str | None = None
    audit_syslog_ca: Path | None = None
    audit_syslog_cert: Path | None = None
    audit_syslog_key: Path | None = None
    audit_syslog_queue: int = Field(10_000, ge=10, le=1_000_000)
    audit_source_id: str = Field("dicom-relay", pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    audit_enterprise_site: str | None = Field(None, max_length=64)

    @field_validator("audit_syslog")
    @classmethod
    def _syslog_url(cls, value: str | None) -> str | None:
        if value and not SYSLOG_URL.match(value):
            raise ValueError("expected tls://HOST:PORT (or tcp://HOST:PORT), e.g. "
                             "tls://siem.example:6514")
        return value

    @model_validator(mode="after")
    def _check_syslog(self) -> AccessSettings:
        if (self.audit_syslog_cert is None) != (self.audit_syslog_key is None):
            raise ValueError("RELAY_AUDIT_SYSLOG_CERT and RELAY_AUDIT_SYSLOG_KEY go together")
        return self

    @property
    def audit_syslog_address(self) -> tuple[str, str, int] | None:
        """(scheme, host, port) of the syslog receiver, if any."""
        if not self.audit_syslog:
            return None
        parts = urlsplit(self.audit_syslog)
        assert parts.hostname is not None and parts.port is not None
        return parts.scheme, parts.hostname, parts.port
