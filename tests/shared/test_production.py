"""RELAY_ENV=production refuses unsafe settings, each by its variable and the one
RELAY_ALLOW_INSECURE entry that accepts it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from relay_api.main import create_app
from relay_shared.db import upgrade
from relay_shared.production import UnsafeInProduction, estimated_bits
from relay_shared.runtime import Runtime, build_runtime
from relay_shared.settings import SettingsError, load_settings

STRONG_SECRET = base64.b64encode(bytes(range(7, 39))).decode()
VAULT_KEY = "k1:" + base64.urlsafe_b64encode(bytes(range(32))).decode()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A production environment with every refusal's cause absent."""
    for name in ("RELAY_DEID_SECRET", "RELAY_ALLOW_INSECURE", "RELAY_IDENTIFIER_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAY_ENV", "production")
    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path / "var"))
    return monkeypatch


def runtime() -> Runtime:
    settings = load_settings()
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    return build_runtime(settings)


UNSAFE = [
    ({"RELAY_DEID_SECRET": "a" * 16}, "RELAY_DEID_SECRET", "weak-deid-secret"),
    ({"RELAY_DEID_SECRET": "development-only-secret-change-me-please"}, "RELAY_DEID_SECRET",
     "weak-deid-secret"),
    ({"RELAY_TLS_VERIFY": "false"}, "RELAY_TLS_VERIFY", "tls-verify-off"),
    ({"RELAY_ORTHANC_URL": "http://orthanc.example:8042"}, "RELAY_ORTHANC_URL", "plain-http"),
    ({"RELAY_DICOMWEB_URL": "http://pacs.example/dicom-web"}, "RELAY_DICOMWEB_URL",
     "plain-http"),
    ({"RELAY_IDENTIFIERS_URL": "http://ids.example/v1"}, "RELAY_IDENTIFIERS_URL", "plain-http"),
    ({"RELAY_GCS_BUCKET": "bucket-a", "RELAY_GCS_ENDPOINT": "http://127.0.0.1:4443"},
     "RELAY_GCS_ENDPOINT", "gcs-emulator"),
    ({"RELAY_SCP_HOST": "0.0.0.0", "RELAY_SCP_TLS_CERT": "/c.pem", "RELAY_SCP_TLS_KEY": "/k.pem"},
     "RELAY_SCP_HOST", "scp-without-allow-list"),
    ({"RELAY_SCP_HOST": "0.0.0.0", "RELAY_SCP_ALLOWED_AES": "MODALITY1"}, "RELAY_SCP_HOST",
     "scp-without-tls"),
    ({"RELAY_OIDC_ISSUER": "http://idp.example/realms/hospital",
      "RELAY_OIDC_CLIENT_ID": "relay"}, "RELAY_OIDC_ISSUER", "plain-http"),
    ({"RELAY_AUDIT_SYSLOG": "tcp://siem.example:514"}, "RELAY_AUDIT_SYSLOG", "plain-syslog"),
]


@pytest.mark.parametrize(("env", "variable", "override"), UNSAFE,
                         ids=[f"{u[2]}-{n}" for n, u in enumerate(UNSAFE)])
def test_production_refuses_each_unsafe_setting_by_name(
        production: pytest.MonkeyPatch, env: dict[str, str], variable: str,
        override: str) -> None:
    for name, value in env.items():
        production.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert variable in str(refused.value) and override in str(refused.value)
    production.setenv("RELAY_ALLOW_INSECURE", override)
    assert load_settings().allow_insecure == [override]


def test_development_accepts_what_production_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ENV", "development")
    monkeypatch.setenv("RELAY_TLS_VERIFY", "false")
    monkeypatch.setenv("RELAY_DEID_SECRET", "a" * 16)
    assert load_settings().tls_verify is False


def test_loopback_and_https_are_not_refused(production: pytest.MonkeyPatch) -> None:
    production.setenv("RELAY_ORTHANC_URL", "http://127.0.0.1:8042")
    production.setenv("RELAY_IDENTIFIERS_URL", "https://ids.example/v1")
    production.setenv("RELAY_SCP_HOST", "::1")
    assert load_settings().orthanc_url == "http://127.0.0.1:8042"


def test_an_unknown_override_name_is_refused(production: pytest.MonkeyPatch) -> None:
    production.setenv("RELAY_ALLOW_INSECURE", "everything")
    with pytest.raises(SettingsError, match="RELAY_ALLOW_INSECURE"):
        load_settings()


def test_secret_strength_is_measured_not_counted() -> None:
    assert estimated_bits("a" * 64) == 0
    assert estimated_bits("abababababababab") < 128
    assert estimated_bits("development-only-secret-change-me-please") < 128
    assert estimated_bits(STRONG_SECRET) >= 128


def test_a_service_that_needs_the_deid_secret_refuses_to_run_without_it(
        production: pytest.MonkeyPatch) -> None:
    production.setenv("RELAY_IDENTIFIER_KEYS", VAULT_KEY)
    with pytest.raises(UnsafeInProduction, match="RELAY_DEID_SECRET"):
        _ = runtime().pseudonymizer
    production.setenv("RELAY_DEID_SECRET", STRONG_SECRET)
    assert runtime().pseudonymizer is not None


def test_the_vault_needs_its_own_key_in_production(production: pytest.MonkeyPatch) -> None:
    production.setenv("RELAY_DEID_SECRET", STRONG_SECRET)
    with pytest.raises(UnsafeInProduction, match="RELAY_IDENTIFIER_KEYS"):
        _ = runtime().vault
    production.setenv("RELAY_IDENTIFIER_KEYS", VAULT_KEY)
    assert runtime().vault.current_key_id == "k1"


def test_the_api_refuses_to_start_without_tokens_in_production(
        production: pytest.MonkeyPatch) -> None:
    production.setenv("RELAY_IDENTIFIER_KEYS", VAULT_KEY)
    with pytest.raises(UnsafeInProduction, match=r"RELAY_API_TOKENS.*no-api-tokens"):
        create_app(runtime())
