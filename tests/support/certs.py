"""Certificates for the TLS tests, made on the spot with ``cryptography``.

``Pki(folder)`` holds a CA of its own; ``issue`` signs a leaf with it (server or
client use, the names it answers for), ``self_signed`` makes a leaf signed by
itself, and ``Pki.rogue`` another CA, whose leaves do not chain to the first.
Every file is PEM; keys are EC P-256 (small, quick, accepted by OpenSSL and dcmtk).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Leaf:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Relay tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _write_key(key: PrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _builder(subject: x509.Name, issuer: x509.Name, key: PrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


class Pki:
    """A certification authority in ``folder``: ``ca.pem`` and ``ca.key``."""

    def __init__(self, folder: Path, name: str = "Relay Test CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name(name)
        cert = (_builder(self._name, self._name, self._key, 30)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                               critical=False)
                .sign(self._key, hashes.SHA256()))
        self.ca = folder / "ca.pem"
        self.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._cert = cert
        _write_key(self._key, folder / "ca.key")

    def rogue(self, name: str = "Rogue CA") -> Pki:
        """Another CA, unknown to anyone who trusts this one."""
        return Pki(self.folder / "rogue", name)

    def issue(self, stem: str, common_name: str, names: tuple[str, ...] = LOOPBACK_NAMES,
              client: bool = False, rsa_key: bool = False) -> Leaf:
        """An RSA key where the peer's only suite has RSA key exchange (the AES profile)."""
        key: PrivateKey = rsa.generate_private_key(65537, 2048) if rsa_key \
            else ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())
        cert = (_builder(_name(common_name), self._name, key, 7)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(_alt_names(names), critical=False)
                .add_extension(aki, critical=False)
                .sign(self._key, hashes.SHA256()))
        return _save(self.folder, stem, cert, key)


def self_signed(folder: Path, stem: str, common_name: str,
                names: tuple[str, ...] = LOOPBACK_NAMES) -> Leaf:
    """A leaf that vouches for itself: what a hand-made certificate usually is."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(common_name), _name(common_name), key, 7)
            .add_extension(_alt_names(names), critical=False)
            .sign(key, hashes.SHA256()))
    return _save(folder, stem, cert, key)


def _save(folder: Path, stem: str, cert: x509.Certificate,
          key: PrivateKey) -> Leaf:
    leaf = Leaf(folder / f"{stem}.pem", folder / f"{stem}.key")
    leaf.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, leaf.key)
    return leaf
