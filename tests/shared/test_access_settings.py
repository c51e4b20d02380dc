"""The identity provider's and the audit trail's settings: each mistake named at start."""

from __future__ import annotations

import pytest

from relay_api.oidc import role_of
from relay_shared.settings import SettingsError, load_settings

ISSUER = {"RELAY_OIDC_ISSUER": "https://idp.example/realms/hospital"}


def with_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_role_map_takes_groups_to_roles_and_viewer_is_a_reader(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_env(monkeypatch, **ISSUER, RELAY_OIDC_CLIENT_ID="relay",
             RELAY_OIDC_ROLE_MAP="relay-admins=admin, relay-viewers=viewer,ops=Operator,"
                                 "privacy=reviewer")
    settings = load_settings()
    assert settings.oidc_role_map == {"relay-admins": "admin", "relay-viewers": "reader",
                                      "ops": "operator", "privacy": "reviewer"}
    assert settings.oidc_api_audience == "relay"


@pytest.mark.parametrize("value, problem", [
    ("relay-admins", "entry 1 is not GROUP=ROLE"),
    ("a=admin,b=superuser", "entry 2: unknown role 'superuser'"),
])
def test_a_wrong_role_map_is_named(monkeypatch: pytest.MonkeyPatch, value: str,
                                   problem: str) -> None:
    with_env(monkeypatch, **ISSUER, RELAY_OIDC_CLIENT_ID="relay", RELAY_OIDC_ROLE_MAP=value)
    with pytest.raises(SettingsError, match="RELAY_OIDC_ROLE_MAP") as refused:
        load_settings()
    assert problem in str(refused.value)


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256,HS512", ""])
def test_only_public_key_algorithms_are_accepted(monkeypatch: pytest.MonkeyPatch,
                                                 algorithms: str) -> None:
    with_env(monkeypatch, **ISSUER, RELAY_OIDC_CLIENT_ID="relay",
             RELAY_OIDC_ALGORITHMS=algorithms)
    with pytest.raises(SettingsError, match="RELAY_OIDC_ALGORITHMS"):
        load_settings()


def test_an_issuer_needs_a_client_or_an_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    with_env(monkeypatch, **ISSUER)
    with pytest.raises(SettingsError, match="RELAY_OIDC_CLIENT_ID"):
        load_settings()


@pytest.mark.parametrize("url", ["udp://siem:514", "tls://siem", "siem.example:6514"])
def test_a_syslog_receiver_is_tls_or_tcp_host_and_port(monkeypatch: pytest.MonkeyPatch,
                                                       url: str) -> None:
    with_env(monkeypatch, RELAY_AUDIT_SYSLOG=url)
    with pytest.raises(SettingsError, match="RELAY_AUDIT_SYSLOG"):
        load_settings()


def test_roles_from_a_nested_claim_without_a_map_by_name() -> None:
    claims = {"realm_access": {"roles": ["offline_access", "operator"]}}
    assert role_of(claims, "realm_access.roles", {}).name == "OPERATOR"  # type: ignore[union-attr]
    assert role_of({"roles": "viewer"}, "roles", {}).name == "READER"  # type: ignore[union-attr]
    assert role_of({"groups": ["staff"]}, "groups", {"admins": "admin"}) is None
    # The highest role of several wins.
    assert role_of({"groups": ["v", "a"]}, "groups", {"v": "reader", "a": "admin"}
                   ).name == "ADMIN"  # type: ignore[union-attr]
