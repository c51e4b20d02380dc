"""Gauges of this process's surroundings, refreshed by its sweep: whether it reaches its
database and broker, and when the TLS certificates it was configured with expire.
The alert rules in deploy/monitoring/ page on them before users notice."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography import x509

from relay_shared.metrics import CERTIFICATE_NOT_AFTER, DEPENDENCY_UP
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
# The settings that name a PEM file of certificates, each reported under its own name.
# Not RELAY_TLS_CA_BUNDLE: it may be a whole system bundle, whose oldest roots expire
# without harm to the relay and would page someone for nothing.
CERTIFICATE_SETTINGS = ("scp_tls_cert", "scp_tls_ca", "dicom_tls_cert", "dicom_tls_ca")


def record_dependencies(database: bool, broker: bool) -> None:
    DEPENDENCY_UP.labels(dependency="database").set(int(database))
    DEPENDENCY_UP.labels(dependency="broker").set(int(broker))


def record_certificates(settings: Settings) -> None:
    """Re-read each configured file, so a certificate renewed on disk shows at once."""
    for name in CERTIFICATE_SETTINGS:
        path = getattr(settings, name)
        if path is None:
            continue
        not_after = earliest_not_after(path)
        if not_after is None:
            log.warning("certificate file unreadable", extra={"setting": name})
            continue
        CERTIFICATE_NOT_AFTER.labels(certificate=name).set(not_after)


def earliest_not_after(path: Path) -> float | None:
    """The soonest expiry among the PEM certificates in ``path`` (a chain or a CA bundle
    stops working when its first certificate does), as Unix time; None if unreadable."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return None
    return min(c.not_valid_after_utc.timestamp() for c in certificates)
