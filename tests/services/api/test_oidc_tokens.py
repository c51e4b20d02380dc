"""The API takes the identity provider's access tokens beside its own machine tokens:
a real OpenID provider (oidc-provider, on loopback) publishes the keys, and each
token that is not exactly right is refused, with the refusal in the audit trail."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from relay_api.main import create_app
from relay_shared.runtime import Runtime
from relay_shared.signing import new_private_pem
from tests.services.api.seed import TOKENS, Seeded, make_runtime, seed
from tests.support.oidc_provider import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    ROLE_MAP,
    USERS,
    OidcProvider,
    new_key,
)

pytestmark = [pytest.mark.oidc]
CALLBACK = "http://127.0.0.1:9/dashboard/callback"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    running = OidcProvider(tmp_path_factory.mktemp("oidc"), [CALLBACK]).start()
    yield running
    running.stop()


@pytest.fixture
def relay(tmp_path: Path, provider: OidcProvider) -> Iterator[tuple[Runtime, Seeded]]:
    runtime = make_runtime(tmp_path / "var", oidc_issuer=provider.issuer,
                           oidc_client_id=CLIENT_ID, oidc_audience=AUDIENCE,
                           oidc_role_claim="groups", oidc_role_map=ROLE_MAP,
                           oidc_jwks_refresh_cooldown=1)
    yield runtime, seed(runtime.engine)
    runtime.engine.dispose()


def call(runtime: Runtime, token: str, method: str, path: str) -> tuple[int, dict[str, object]]:
    client = TestClient(create_app(runtime), headers={"Authorization": f"Bearer {token}"})
    response = client.request(method, path)
    return response.status_code, response.json()


def trail(runtime: Runtime, **filters: str) -> list[dict[str, object]]:
    status, page = call(runtime, TOKENS["admin"], "GET",
                        "/api/v1/admin/audit?" + "&".join(f"{k}={v}" for k, v in filters.items()))
    assert status == 200
    return page["items"]  # type: ignore[return-value]


def test_a_user_of_the_admin_group_is_an_admin_by_name(
        relay: tuple[Runtime, Seeded], provider: OidcProvider) -> None:
    runtime, _ = relay
    status, me = call(runtime, provider.token("alice"), "GET", "/api/v1/me")
    assert (status, me) == (200, {"role": "admin", "name": "alice", "kind": "user"})
    status, _ = call(runtime, provider.token("alice"), "GET", "/api/v1/admin/identifiers")
    assert status == 200
    (read,) = trail(runtime, actor="alice", action="read")
    assert read["actor_kind"] == "user" and read["role"] == "admin"
    assert read["address"] == "testclient"


def test_a_user_of_the_viewer_group_reads_but_cannot_act_as_admin(
        relay: tuple[Runtime, Seeded], provider: OidcProvider) -> None:
    runtime, seeded = relay
    token = provider.token("victor")
    assert call(runtime, token, "GET", "/api/v1/series")[0] == 200
    status, body = call(runtime, token, "GET", "/api/v1/admin/identifiers")
    assert status == 403 and "admin role" in str(body["detail"])
    assert call(runtime, token, "POST", f"/api/v1/series/{seeded.failed}/retry")[0] == 403
    denied = trail(runtime, actor="victor", action="denied")
    assert {d["outcome"] for d in denied} == {"failure"} and len(denied) == 2
    assert any("/api/v1/admin/identifiers" in str(d["detail"]) for d in denied)


def test_a_user_whose_groups_give_no_role_is_refused(
        relay: tuple[Runtime, Seeded], provider: OidcProvider) -> None:
    runtime, _ = relay
    status, body = call(runtime, provider.token("nora"), "GET", "/api/v1/series")
    assert status == 403 and "gives a relay role" in str(body["detail"])
    assert trail(runtime, actor="nora", action="denied")


def _unsigned(claims: dict[str, object], header: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part(header)}.{part(claims)}."


@pytest.mark.parametrize("case, reason", [
    ("expired", "expired"),
    ("wrong issuer", "another issuer"),
    ("wrong audience", "another audience"),
    ("wrongly signed", "signature does not verify"),
    ("unknown key", "key the provider does not publish"),
    ("alg none", "algorithm not allowed"),
    ("HS256 with the public key", "algorithm not allowed"),
    ("no expiry", "not valid"),
])
def test_a_token_not_exactly_right_is_refused(
        relay: tuple[Runtime, Seeded], provider: OidcProvider, case: str, reason: str) -> None:
    runtime, _ = relay
    good = jwt.decode(provider.token("alice"), options={"verify_signature": False})
    kid = provider.keys[0][1]["kid"]
    public_pem = provider.keys[0][0].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    other_key, _ = new_key(kid)
    token = {
        "expired": lambda: provider.token("alice", exp=good["iat"] - 120),
        "wrong issuer": lambda: provider.token("alice", iss="http://127.0.0.1:1"),
        "wrong audience": lambda: provider.token("alice", aud="urn:another:api"),
        "wrongly signed": lambda: jwt.encode(good, other_key, "RS256", headers={"kid": kid}),
        "unknown key": lambda: jwt.encode(good, other_key, "RS256", headers={"kid": "k-x"}),
        "alg none": lambda: _unsigned(good, {"alg": "none", "typ": "JWT", "kid": kid}),
        "HS256 with the public key": lambda: _hs256(good, public_pem, kid),
        "no expiry": lambda: provider.token("alice", exp=None),
    }[case]()
    status, body = call(runtime, token, "GET", "/api/v1/series")
    assert status == 401, body
    assert reason in str(body["detail"])
    refusals = trail(runtime, action="sign-in", outcome="failure")
    assert any(reason in str(r["detail"]) for r in refusals), refusals


def _hs256(claims: dict[str, object], secret: bytes, kid: str) -> str:
    # PyJWT itself refuses an asymmetric key as an HMAC secret; the attacker signs by hand.
    import hashlib
    import hmac

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_machine_tokens_still_work_beside_the_provider(relay: tuple[Runtime, Seeded]) -> None:
    runtime, _ = relay
    status, me = call(runtime, TOKENS["operator"], "GET", "/api/v1/me")
    assert status == 200 and me["kind"] == "token"


def test_a_key_rotation_needs_no_restart(
        relay: tuple[Runtime, Seeded], provider: OidcProvider) -> None:
    runtime, _ = relay
    app = TestClient(create_app(runtime))

    def status_of(token: str) -> int:
        return app.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code

    assert status_of(provider.token("alice")) == 200  # the keys are cached from here
    provider.restart_with_new_key("key-rotated")
    time.sleep(1.1)  # RELAY_OIDC_JWKS_REFRESH_COOLDOWN
    assert status_of(provider.token("alice", key_index=0)) == 200
    assert status_of(provider.token("alice", key_index=1)) == 200


def test_in_production_the_session_cookie_is_secure_and_host_only(
        tmp_path: Path, provider: OidcProvider) -> None:
    """The whole code flow without a browser: the authorization request carries state,
    nonce and an S256 PKCE challenge; the provider's sign-in form is filled; the relay's
    callback sets the production cookie."""
    runtime = make_runtime(tmp_path / "prod", env="production", oidc_issuer=provider.issuer,
                           oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
                           oidc_audience=AUDIENCE, oidc_scopes="openid profile groups relay",
                           oidc_role_map=ROLE_MAP, public_url="http://127.0.0.1:9",
                           signing_key=new_private_pem())
    relay = TestClient(create_app(runtime), base_url="https://testserver")
    start = relay.get("/dashboard/login", follow_redirects=False)
    assert start.status_code == 303
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [CALLBACK]
    pending = start.headers["set-cookie"].lower()
    assert "httponly" in pending and "secure" in pending and "samesite=lax" in pending

    with httpx.Client() as browser:
        form = browser.get(start.headers["location"], follow_redirects=True)
        action = re.search(r'action="([^"]+)"', form.text)
        assert action is not None
        answer = browser.post(str(form.url.join(action.group(1))),
                              data={"username": "alice", "password": USERS["alice"]["password"]})
        # Follow the provider's own redirects, up to the one back to the relay.
        while answer.is_redirect and not answer.headers["location"].startswith(CALLBACK):
            answer = browser.get(str(answer.url.join(answer.headers["location"])))
        back = answer.headers["location"]
    assert back.startswith(CALLBACK + "?")
    done = relay.get("/dashboard/callback?" + urlsplit(back).query, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/dashboard")
    cookies = done.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("__Host-relay-session="))
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=strict"} <= flags
    assert not any(f.startswith("domain=") for f in flags)
    relay.cookies.set("__Host-relay-session", session.split(";")[0].split("=", 1)[1])
    me = relay.get("/api/v1/me")
    assert me.json() == {"role": "admin", "name": "alice", "kind": "user"}
    runtime.engine.dispose()
