"""TLS settings and contexts without a network: what is refused at start, and how."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from relay_shared import tlsconfig
from relay_shared.settings import SettingsError, load_settings
from tests.services.security.conftest import Certificates


def test_plain_dicom_and_verified_https_are_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert tlsconfig.scp_context(settings) is None
    assert tlsconfig.dicom_client_factory(settings, "pacs") is None
    verify = tlsconfig.http_verify(settings)
    assert isinstance(verify, ssl.SSLContext) and verify.verify_mode is ssl.CERT_REQUIRED
    assert tlsconfig.http_verify(load_settings(data_dir=tmp_path, tls_verify=False)) is False


@pytest.mark.parametrize(("overrides", "named"), [
    ({"scp_tls_cert": "a.pem"}, "RELAY_SCP_TLS_CERT and RELAY_SCP_TLS_KEY go together"),
    ({"dicom_tls_key": "a.key"}, "RELAY_DICOM_TLS_CERT and RELAY_DICOM_TLS_KEY go together"),
    ({"scp_tls_require_client_cert": True}, "RELAY_SCP_TLS_REQUIRE_CLIENT_CERT needs"),
])
def test_incomplete_tls_settings_stop_the_start(tmp_path: Path, overrides: dict[str, object],
                                                named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(data_dir=tmp_path, **overrides)


def test_the_scp_context_wants_tls_1_2_and_checks_clients(certs: Certificates,
                                                          tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, scp_tls_cert=certs.server.cert,
                             scp_tls_key=certs.server.key, scp_tls_ca=certs.ca,
                             scp_tls_require_client_cert=True)
    context = tlsconfig.scp_context(settings)
    assert context is not None
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_an_unreadable_certificate_is_named(certs: Certificates, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, scp_tls_cert=tmp_path / "missing.pem",
                             scp_tls_key=certs.server.key)
    with pytest.raises(tlsconfig.TlsConfigError, match=r"RELAY_SCP_TLS_CERT.*missing\.pem"):
        tlsconfig.scp_context(settings)
    settings = load_settings(data_dir=tmp_path, dicom_tls=True, dicom_tls_ca=certs.server.key)
    with pytest.raises(tlsconfig.TlsConfigError, match="RELAY_DICOM_TLS_CA"):
        tlsconfig.dicom_client_factory(settings, "pacs")


def test_certificate_names_are_the_common_name_and_dns_names() -> None:
    peer = {"subject": ((("organizationName", "Hospital"),), (("commonName", "CT1"),)),
            "subjectAltName": (("DNS", "CT1-BACKUP"), ("IP Address", "10.0.0.5"))}
    assert tlsconfig.certificate_names(peer) == {"CT1", "CT1-BACKUP"}
    assert tlsconfig.certificate_names(None) == set()
