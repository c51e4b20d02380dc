"""What a production relay refuses to start with, and the one way to accept each on purpose.

With RELAY_ENV=production every setting below that would weaken the relay is a
refusal that names its variable. A site that needs one anyway (an Orthanc
reached over plain HTTP inside a closed cluster network, say) lists its name in
RELAY_ALLOW_INSECURE; the relay then starts and warns at each start. There is
no other switch: the exceptions in force can be read from one variable.

Checks that concern one service only (the deid secret, the vault key, the API
tokens) are made where that service needs the value, so a pod is not given a
secret only to pass a check.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr


class Settings(Protocol):
    """What the checks read of the settings: named here, not imported, because the
    settings run these checks when they are built."""

    @property
    def production(self) -> bool: ...
    @property
    def deid_secret(self) -> SecretStr: ...
    @property
    def deid_secret_given(self) -> bool: ...
    @property
    def tls_verify(self) -> bool: ...
    @property
    def gcs_endpoint(self) -> str | None: ...
    @property
    def s3_endpoint(self) -> str | None: ...
    @property
    def orthanc_url(self) -> str | None: ...
    @property
    def dicomweb_url(self) -> str | None: ...
    @property
    def identifiers_url(self) -> str | None: ...
    @property
    def follow_orthanc_urls(self) -> list[str]: ...
    @property
    def scp_port(self) -> int: ...
    @property
    def scp_host(self) -> str: ...
    @property
    def scp_allowed_aes(self) -> list[str]: ...
    @property
    def scp_allowed_hosts(self) -> list[str]: ...
    @property
    def scp_tls_cert(self) -> Path | None: ...
    @property
    def oidc_issuer(self) -> str | None: ...
    @property
    def audit_syslog(self) -> str | None: ...
    @property
    def allow_insecure(self) -> list[Insecure]: ...

# An HMAC key worth the name: 128 bits or more by zxcvbn's estimate of the guesses it
# takes (words, keyboard runs, repeats and dates count for little) and by the entropy of
# its character frequencies. `openssl rand -base64 32` gives about 145; sixteen "a" 0.
MIN_SECRET_BITS = 128
# zxcvbn's cost grows fast with length; a prefix this long already decides.
ESTIMATE_PREFIX = 200
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class Insecure(StrEnum):
    """The names RELAY_ALLOW_INSECURE accepts, one per kind of refusal."""

    WEAK_DEID_SECRET = "weak-deid-secret"
    DERIVED_VAULT_KEY = "derived-vault-key"
    NO_API_TOKENS = "no-api-tokens"
    TLS_VERIFY_OFF = "tls-verify-off"
    PLAIN_HTTP = "plain-http"
    GCS_EMULATOR = "gcs-emulator"
    SCP_WITHOUT_ALLOW_LIST = "scp-without-allow-list"
    SCP_WITHOUT_TLS = "scp-without-tls"
    PLAIN_SYSLOG = "plain-syslog"


class UnsafeInProduction(ValueError):
    """A refusal: names the variable and the RELAY_ALLOW_INSECURE entry that accepts it."""

    def __init__(self, variable: str, problem: str, exception: Insecure) -> None:
        super().__init__(f"{variable}: {problem} in production (to run so on purpose, "
                         f"add {exception.value} to RELAY_ALLOW_INSECURE)")
        self.exception = exception


def estimated_bits(secret: str) -> float:
    """The lower of two estimates: zxcvbn's guesses, and the Shannon entropy of the
    secret's own character frequencies times its length."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    from zxcvbn import zxcvbn  # its word lists take a while to load: only when asked

    head = secret[:ESTIMATE_PREFIX]
    guessed = zxcvbn(head, max_length=len(head))["guesses_log10"] * math.log2(10)
    return min(per_char * len(secret), guessed)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_remote(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def global_refusals(settings: Settings) -> list[UnsafeInProduction]:
    """Every unsafe setting that concerns all services alike."""
    found: list[UnsafeInProduction] = []
    secret = settings.deid_secret.get_secret_value()
    if settings.deid_secret_given and estimated_bits(secret) < MIN_SECRET_BITS:
        found.append(weak_secret())
    if not settings.tls_verify:
        found.append(UnsafeInProduction("RELAY_TLS_VERIFY", "certificate verification is off",
                                        Insecure.TLS_VERIFY_OFF))
    for variable, url in _remote_urls(settings):
        if plain_http_remote(url):
            found.append(UnsafeInProduction(variable, "a plain http:// URL to another machine "
                                            "(use https://)", Insecure.PLAIN_HTTP))
    if settings.gcs_endpoint:
        found.append(UnsafeInProduction("RELAY_GCS_ENDPOINT", "an emulator endpoint, spoken "
                                        "to without credentials", Insecure.GCS_EMULATOR))
    found.extend(_scp_refusals(settings))
    if settings.audit_syslog and not settings.audit_syslog.startswith("tls://"):
        found.append(UnsafeInProduction("RELAY_AUDIT_SYSLOG", "audit messages in plain TCP "
                                        "(use tls://)", Insecure.PLAIN_SYSLOG))
    return [r for r in found if r.exception not in settings.allow_insecure]


def weak_secret() -> UnsafeInProduction:
    return UnsafeInProduction(
        "RELAY_DEID_SECRET", f"unset or weaker than {MIN_SECRET_BITS} bits (make one with "
        "`openssl rand -base64 32`)", Insecure.WEAK_DEID_SECRET)


def _remote_urls(settings: Settings) -> Iterable[tuple[str, str | None]]:
    yield "RELAY_ORTHANC_URL", settings.orthanc_url
    yield "RELAY_DICOMWEB_URL", settings.dicomweb_url
    yield "RELAY_IDENTIFIERS_URL", settings.identifiers_url
    yield "RELAY_S3_ENDPOINT", settings.s3_endpoint
    yield "RELAY_OIDC_ISSUER", settings.oidc_issuer
    for url in settings.follow_orthanc_urls:
        yield "RELAY_FOLLOW_ORTHANC_URLS", url


def _scp_refusals(settings: Settings) -> list[UnsafeInProduction]:
    if not settings.scp_port or is_loopback(settings.scp_host):
        return []
    found = []
    if not settings.scp_allowed_aes and not settings.scp_allowed_hosts:
        found.append(UnsafeInProduction(
            "RELAY_SCP_HOST", f"the SCP listens on {settings.scp_host} and accepts any caller "
            "(set RELAY_SCP_ALLOWED_AES and/or RELAY_SCP_ALLOWED_HOSTS)",
            Insecure.SCP_WITHOUT_ALLOW_LIST))
    if settings.scp_tls_cert is None:
        found.append(UnsafeInProduction(
            "RELAY_SCP_HOST", f"the SCP listens on {settings.scp_host} in plain DICOM (set "
            "RELAY_SCP_TLS_CERT and RELAY_SCP_TLS_KEY)", Insecure.SCP_WITHOUT_TLS))
    return found


def check_for_service(settings: Settings, refusal: UnsafeInProduction) -> None:
    """Raise `refusal` if production does not accept it by name."""
    if settings.production and refusal.exception not in settings.allow_insecure:
        raise refusal


class RequiredInProduction(ValueError):
    """A setting production cannot do without; no RELAY_ALLOW_INSECURE entry accepts its
    absence, because a switch of its own says what the site gives up instead."""


class SigningSettings(Protocol):
    @property
    def production(self) -> bool: ...
    @property
    def manifests(self) -> bool: ...
    @property
    def signing_key(self) -> SecretStr | None: ...


def require_signing_key(settings: SigningSettings) -> None:
    """With manifests on, production signs with a key of its own: one derived from the deid
    secret would be known to every pod that de-identifies, and proves nothing about who
    delivered. Checked where the key is needed (the sender signs, the api serves it)."""
    if settings.production and settings.manifests and settings.signing_key is None:
        raise RequiredInProduction(
            "RELAY_SIGNING_KEY: not set in production, where every delivered series gets "
            "a signed manifest (make a key with `relay signing-key new`), or set "
            "RELAY_MANIFESTS=false to deliver without manifests")
