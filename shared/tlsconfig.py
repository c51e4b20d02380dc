"""TLS for every link the relay opens or answers, built from the settings in one place.

- ``scp_context``: the DICOM SCP of ingest. Its own certificate and key, TLS 1.2 at
  least, and with ``RELAY_SCP_TLS_CA`` the client certificates checked against that
  CA (required with ``RELAY_SCP_TLS_REQUIRE_CLIENT_CERT``). The handshake is left to
  the association's own thread (``handshake``), so a slow or hostile peer never
  holds up the listener, and a refusal is logged with the link that failed.
- ``dicom_client_tls``: what an association the relay opens (C-STORE, C-FIND, and
  C-MOVE of a pull source) hands to pynetdicom as ``tls_args``. The peer's chain is
  verified and its name checked; a failed handshake is kept on the context
  (``failure_of``) so the caller can say why, which pynetdicom itself only logs.
- ``http_verify``: what httpx takes as ``verify=`` for Orthanc, DICOMweb and the
  identifiers service.

Mutual TLS and AE titles: when client certificates are required and the SCP has an
allow-list of calling AE titles, the calling AE title of an association must be the
certificate's subject common name or one of its DNS subject alternative names.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from relay_shared.settings import Settings

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 30.0
# OpenSSL's name of TLS_RSA_WITH_AES_128_CBC_SHA, the suite of the AES TLS profile.
AES_PROFILE_SUITE = "AES128-SHA"
# OpenSSL's verify codes for a chain that ends at a certificate nobody trusts.
# Which link each one names, for when the peer's chain itself cannot be read (a server
# does not keep a client's chain after refusing it).
UNTRUSTED_CHAIN = {
    18: "the peer's own certificate is self-signed",
    19: "the peer's chain ends at a self-signed root",
    20: "the issuer of the peer's certificate is unknown",
    21: "the issuer of the peer's only certificate is unknown",
}


class TlsConfigError(ValueError):
    """A certificate, key or CA file named by the settings cannot be used."""


class _ServerContext(ssl.SSLContext):
    """Wraps accepted sockets without shaking hands; ``handshake`` does it later, on the
    association's own thread (pynetdicom wraps them on its single accepting thread)."""

    def wrap_socket(self, sock: socket.socket, server_side: bool = False,
                    do_handshake_on_connect: bool = True, *args: Any,
                    **kwargs: Any) -> ssl.SSLSocket:
        return super().wrap_socket(sock, server_side, do_handshake_on_connect and not server_side,
                                   *args, **kwargs)


class _RecordingSocket(ssl.SSLSocket):
    """Keeps a failed handshake, and the chain the peer presented, on its context."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except ssl.SSLError as exc:  # before connect() drops the chain along with the failure
            context = self.context
            if isinstance(context, _ClientContext):
                context.failure = exc
                context.peer_chain = presented_chain(self)
            raise


class _ClientContext(ssl.SSLContext):
    sslsocket_class = _RecordingSocket

    def __init__(self, protocol: int) -> None:
        self.failure: ssl.SSLError | None = None
        self.peer_chain: list[x509.Certificate] = []


def _load(context: ssl.SSLContext, cert: Path | None, key: Path | None, what: str) -> None:
    if cert is None:
        return
    try:
        context.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{what}: cannot load certificate {cert} with key {key}: "
                             f"{getattr(exc, 'reason', None) or exc}") from None


def _trust(context: ssl.SSLContext, ca: Path | None, what: str) -> None:
    try:
        if ca is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            context.load_verify_locations(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{what}: cannot load CA bundle {ca}: "
                             f"{getattr(exc, 'reason', None) or exc}") from None


def scp_context(settings: Settings) -> ssl.SSLContext | None:
    """The SCP's server context, or None for plain DICOM (no RELAY_SCP_TLS_CERT)."""
    if settings.scp_tls_cert is None:
        return None
    context = _ServerContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context, settings.scp_tls_cert, settings.scp_tls_key, "RELAY_SCP_TLS_CERT")
    if settings.scp_tls_profile == "aes":
        _add_aes_profile(context, settings.scp_tls_cert)
    if settings.scp_tls_ca is not None:
        _trust(context, settings.scp_tls_ca, "RELAY_SCP_TLS_CA")
        context.verify_mode = (ssl.CERT_REQUIRED if settings.scp_tls_require_client_cert
                               else ssl.CERT_OPTIONAL)
    return context


def _add_aes_profile(context: ssl.SSLContext, cert: Path) -> None:
    """The default suites, and AES_128_CBC_SHA with RSA key exchange after them: a peer
    that offers a modern suite still gets one. Python's defaults exclude SHA-1 suites
    for good, so the list is rebuilt by name rather than amended."""
    # RSA key exchange needs an RSA key: with another, every such peer would fail its
    # handshake with nothing but "handshake failure" to go on.
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    if not isinstance(leaf.public_key(), rsa.RSAPublicKey):
        raise TlsConfigError("RELAY_SCP_TLS_PROFILE=aes needs an RSA certificate in "
                             f"RELAY_SCP_TLS_CERT ({cert} has another key type): its one "
                             "suite, TLS_RSA_WITH_AES_128_CBC_SHA, exchanges keys by RSA")
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]
    context.set_ciphers(":".join([*tls12, AES_PROFILE_SUITE]))


def dicom_client_tls(settings: Settings, host: str) -> tuple[ssl.SSLContext, str] | None:
    """``tls_args`` for an association to ``host``, or None for plain DICOM. A fresh
    context each time: it records the failure of its one handshake."""
    if not settings.dicom_tls:
        return None
    context = _ClientContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _trust(context, settings.dicom_tls_ca, "RELAY_DICOM_TLS_CA")
    _load(context, settings.dicom_tls_cert, settings.dicom_tls_key, "RELAY_DICOM_TLS_CERT")
    return context, settings.dicom_tls_server_name or host


ClientTls = Callable[[], "tuple[ssl.SSLContext, str] | None"]


def dicom_client_factory(settings: Settings, host: str) -> ClientTls | None:
    """For an SCU of any kind (a destination, a pull source's C-FIND and C-MOVE): a
    function giving fresh ``tls_args`` per association, or None for plain DICOM. Builds
    one context at once, so a wrong file stops the service at start."""
    if dicom_client_tls(settings, host) is None:
        return None
    return lambda: dicom_client_tls(settings, host)


def failure_of(tls_args: tuple[ssl.SSLContext, str] | None) -> str | None:
    """Why the TLS handshake of an association failed, or None if it did not."""
    if tls_args is None or not isinstance(tls_args[0], _ClientContext):
        return None
    context = tls_args[0]
    if context.failure is None:
        return None
    return describe(context.failure, context.peer_chain, "RELAY_DICOM_TLS_CA")


def handshake(sock: object, timeout: float = HANDSHAKE_TIMEOUT) -> str | None:
    """Finish the server side handshake of an accepted socket; the reason it failed, or
    None when it succeeded (or the socket is not TLS)."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        sock.do_handshake()
    except ssl.SSLError as exc:
        return describe(exc, presented_chain(sock), "RELAY_SCP_TLS_CA")
    except OSError as exc:
        return f"connection lost during the TLS handshake ({type(exc).__name__})"
    finally:
        sock.settimeout(previous)
    return None


def presented_chain(sock: ssl.SSLSocket) -> list[x509.Certificate]:
    """The certificates the peer sent, leaf first, verified or not."""
    sslobj = getattr(sock, "_sslobj", None)
    try:
        chain = sslobj.get_unverified_chain() if sslobj is not None else None
    except (AttributeError, ValueError, ssl.SSLError):
        return []
    return [x509.load_der_x509_certificate(c.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
            for c in chain or []]


def describe(exc: ssl.SSLError, chain: Sequence[x509.Certificate], trusted: str) -> str:
    """A refusal in words: OpenSSL's reason and, for a chain nobody trusts, its last link."""
    if not isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS handshake failed: {exc.reason or exc}"
    reason = f"certificate verification failed: {exc.verify_message} (code {exc.verify_code})"
    if exc.verify_code in UNTRUSTED_CHAIN:
        if chain:
            return f"{reason}; {_untrusted_link(chain, trusted)}"
        return f"{reason}; {UNTRUSTED_CHAIN[exc.verify_code]}, not a CA in {trusted}"
    if chain:
        return f"{reason}; presented certificate {_subject(chain[0])}"
    return reason


def _untrusted_link(chain: Sequence[x509.Certificate], trusted: str) -> str:
    top = 0
    while top + 1 < len(chain) and chain[top].issuer == chain[top + 1].subject:
        top += 1
    cert = chain[top]
    path = " <- ".join(_subject(c) for c in chain[:top + 1])
    if cert.issuer == cert.subject:
        link = f"{_subject(cert)} is self-signed"
    else:
        link = f"{_subject(cert)} is issued by {cert.issuer.rfc4514_string()!r}"
    return f"chain {path}: {link}, which is not a CA in {trusted}"


def _subject(cert: x509.Certificate) -> str:
    return repr(cert.subject.rfc4514_string())


def certificate_names(peer_cert: dict[str, Any] | None) -> set[str]:
    """Subject common names and DNS subject alternative names of a verified peer
    certificate (as ``SSLSocket.getpeercert()`` gives it)."""
    if not peer_cert:
        return set()
    names = {value for rdn in peer_cert.get("subject", ()) for key, value in rdn
             if key == "commonName"}
    names |= {value for kind, value in peer_cert.get("subjectAltName", ()) if kind == "DNS"}
    return names


def http_verify(settings: Settings) -> ssl.SSLContext | bool:
    """httpx's ``verify=``: the system CAs, the configured bundle, or off when asked."""
    if not settings.tls_verify:
        return False
    context = ssl.create_default_context(cafile=str(settings.tls_ca_bundle)
                                         if settings.tls_ca_bundle else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def warn_if_unverified(settings: Settings, service: str) -> None:
    """One warning line at each start of a service while HTTPS verification is off."""
    if not settings.tls_verify:
        log.warning("RELAY_TLS_VERIFY=false: HTTPS certificates are not verified",
                    extra={"service": service})


def verification_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an HTTP client's exception, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def http_failure(what: str, exc: BaseException) -> str:
    """``<what> unreachable: ...``, naming a refused certificate and the settings."""
    tls = verification_error(exc)
    if tls is None:
        return f"{what} unreachable: {type(exc).__name__}"
    return f"{what}: {describe(tls, [], 'RELAY_TLS_CA_BUNDLE (or the system CAs)')}"
