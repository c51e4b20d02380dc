"""A real OpenID provider on loopback (the npm package oidc-provider, run by Node.js
from tests/support/oidc), with test users in two groups.

The tests hold the provider's signing key, so that besides the tokens the provider
issues they can make tokens that differ from a good one in one respect only
(expired, another issuer, another audience) and see each refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.services import free_port

SUPPORT = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "relay-dashboard"
CLIENT_SECRET = "relay-dashboard-test-secret"
AUDIENCE = "urn:relay:api"
SCOPE = "relay"
USERS = {
    "alice": {"password": "alice-password", "groups": ["relay-admins"]},
    "victor": {"password": "victor-password", "groups": ["relay-viewers"]},
    "nora": {"password": "nora-password", "groups": ["cafeteria"]},
    "rita": {"password": "rita-password", "groups": ["relay-reviewers"]},
}
ROLE_MAP = "relay-admins=admin,relay-viewers=viewer,relay-reviewers=reviewer"


def ensure_node_modules() -> None:
    """`npm ci` from the lock file when the provider's packages are not installed."""
    if (SUPPORT / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed to install the test OpenID provider (Debian: npm)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SUPPORT, check=True,
                   timeout=600)


def new_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return key, jwk


@dataclass
class OidcProvider:
    folder: Path
    redirect_uris: list[str]
    port: int = field(default_factory=free_port)
    keys: list[tuple[rsa.RSAPrivateKey, dict[str, Any]]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OidcProvider:
        ensure_node_modules()
        if not self.keys:
            self.keys.append(new_key("key-1"))
        config = {
            "port": self.port, "audience": AUDIENCE, "scope": SCOPE, "users": USERS,
            "jwks": {"keys": [jwk for _, jwk in self.keys]},
            "client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "redirect_uris": self.redirect_uris,
                       "grant_types": ["authorization_code"], "response_types": ["code"],
                       "token_endpoint_auth_method": "client_secret_basic"},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "provider.json"
        path.write_text(json.dumps(config))
        log = (self.folder / "provider.log").open("wb")
        self.process = subprocess.Popen(["node", str(SUPPORT / "provider.mjs"), str(path)],
                                        cwd=SUPPORT, stdout=log, stderr=subprocess.STDOUT)
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError("the OpenID provider exited: "
                                   + (self.folder / "provider.log").read_text()[-2000:])
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration").is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the OpenID provider did not answer in 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart_with_new_key(self, kid: str) -> None:
        """Key rotation: the provider now signs with a new key (the old one is still
        published beside it, as providers do while old tokens live)."""
        self.stop()
        self.keys.insert(0, new_key(kid))
        self.start()

    def token(self, user: str = "alice", key_index: int = 0, **overrides: Any) -> str:
        """An access token as the provider makes them, signed with its own key; each
        override changes (or, as None, removes) one claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": AUDIENCE, "sub": user, "iat": now, "exp": now + 300,
            "scope": SCOPE, "client_id": CLIENT_ID, "groups": USERS[user]["groups"],
            "preferred_username": user}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        key, jwk = self.keys[key_index]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": jwk["kid"]})
