"""How the relay proves itself to an HTTP archive: a fixed bearer token, or OAuth2
client credentials (RFC 6749 section 4.4).

A client-credentials token is fetched when first needed, kept until shortly before
it expires, and fetched again once when the archive answers 401 with it (revoked,
or the archive's clock ahead of ours); a second 401 is the archive's answer. The
secret goes to the token endpoint only, in HTTP Basic as the RFC asks every server
to accept.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Callable, Generator

import httpx

from relay_sender.destinations import DestinationError
from relay_shared.tlsconfig import http_failure

# Renew this long before the stated expiry (at most half the lifetime), so a token
# never expires between being chosen and reaching the archive.
RENEW_BEFORE = 60.0


class BearerToken(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                              None]:
        request.headers["Authorization"] = self._header
        yield request


class ClientCredentials(httpx.Auth):
    def __init__(self, token_url: str, client_id: str, client_secret: str,
                 scope: str | None = None, timeout: float = 30.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = token_url
        self._credentials = httpx.BasicAuth(client_id, client_secret)
        self._scope = scope
        self._http = httpx.Client(timeout=timeout, verify=verify)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                              None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(rejected=token)}"
            yield request

    def token(self, rejected: str | None = None) -> str:
        """The cached token, unless it is due for renewal or is the one just rejected
        (another thread may have renewed it meanwhile: then that one is used)."""
        with self._lock:
            if self._token is None or self._token == rejected or \
                    self._clock() >= self._renew_at:
                self._token, self._renew_at = self._fetch()
            return self._token

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials",
                **({"scope": self._scope} if self._scope else {})}
        try:
            response = self._http.post(self._url, data=form, auth=self._credentials,
                                       headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise DestinationError(http_failure("dicomweb token endpoint", exc)) from exc
        body = _json(response)
        if response.status_code != 200:
            raise DestinationError(f"dicomweb token endpoint refused the client: HTTP "
                                   f"{response.status_code} ({_oauth_error(body)})")
        token = body.get("access_token")
        if not isinstance(token, str) or not token or \
                str(body.get("token_type", "bearer")).lower() != "bearer":
            raise DestinationError("dicomweb token endpoint answered without a bearer "
                                   "access_token")
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            return token, float("inf")  # no stated expiry: kept until a 401
        return token, self._clock() + lifetime - min(RENEW_BEFORE, lifetime / 2)

    def close(self) -> None:
        self._http.close()


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error(body: dict[str, object]) -> str:
    """The RFC 6749 error code only (invalid_client, ...): never a description, which
    an endpoint may fill with anything."""
    code = re.sub(r"[^a-z_]", "", str(body.get("error") or "").lower())[:40]
    return code or "no error code"
