"""DICOMweb with bearer tokens: Orthanc's DICOMweb behind a reverse proxy that lets in
only the tokens a local OAuth2 token endpoint issued, both real HTTP servers on
loopback."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from relay_sender.destinations import DestinationError
from relay_sender.dicomweb import DicomWebDestination
from relay_sender.main import build_destinations
from relay_sender.webauth import ClientCredentials
from relay_shared.settings import SettingsError, load_settings
from tests.services.sender.test_dicom_ae import PATIENT, outgoing
from tests.support.dicom_factory import SeriesSpec, write_series
from tests.support.services import Orthanc

CLIENT_ID, CLIENT_SECRET = "relay", "client-secret-1"
ProxyFactory = Callable[[Orthanc, Callable[[str], bool]], "BearerProxy"]


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class TokenEndpoint:
    """Client credentials grant: checks the client's Basic auth and the grant, issues
    tok-1, tok-2, ... with the lifetime set."""

    def __init__(self, lifetime: int | None = 3600) -> None:
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.scopes: list[str | None] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                expected = "Basic " + base64.b64encode(
                    f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._json(401, {"error": "invalid_client",
                                     "error_description": "secret was wrong-secret"})
                    return
                if form.get("grant_type") != ["client_credentials"]:
                    self._json(400, {"error": "unsupported_grant_type"})
                    return
                endpoint.scopes.append((form.get("scope") or [None])[0])
                token = f"tok-{len(endpoint.issued) + 1}"
                endpoint.issued.append(token)
                self._json(200, {"access_token": token, "token_type": "Bearer",
                                 **({"expires_in": endpoint.lifetime}
                                    if endpoint.lifetime else {})})

            def _json(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server, base = serve(Handler)
        self.url = f"{base}/oauth/token"


class BearerProxy:
    """Forwards to Orthanc only requests whose bearer token `allowed` accepts."""

    def __init__(self, orthanc: Orthanc, allowed: Callable[[str], bool]) -> None:
        self.seen: list[str] = []
        upstream = httpx.Client(base_url=orthanc.url, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                header = self.headers.get("Authorization", "")
                proxy.seen.append(header)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not (header.startswith("Bearer ") and allowed(header[len("Bearer "):])):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = upstream.request(self.command, self.path, content=body, headers={
                    k: v for k, v in self.headers.items()
                    if k.lower() in ("content-type", "accept")})
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server, base = serve(Handler)
        self.url = f"{base}/dicom-web"


@pytest.fixture
def tokens() -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def proxy_for() -> Iterator[Callable[[Orthanc, Callable[[str], bool]], BearerProxy]]:
    started: list[BearerProxy] = []

    def start(orthanc: Orthanc, allowed: Callable[[str], bool]) -> BearerProxy:
        started.append(BearerProxy(orthanc, allowed))
        return started[-1]

    yield start
    for proxy in started:
        proxy.server.shutdown()


def client_credentials(proxy: BearerProxy, tokens: TokenEndpoint) -> DicomWebDestination:
    return DicomWebDestination(proxy.url, timeout=30, token_url=tokens.url,
                               client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                               scope="dicomweb.write")


@pytest.mark.orthanc
def test_a_fixed_bearer_token_lets_the_relay_in(orthanc: Orthanc, proxy_for: ProxyFactory,
                                                tmp_path: Path) -> None:
    proxy = proxy_for(orthanc, lambda token: token == "static-token")
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "s"))
    with pytest.raises(DestinationError, match="HTTP 401"):
        DicomWebDestination(proxy.url, token="another-token").send(series)
    with pytest.raises(DestinationError, match="HTTP 401"):
        DicomWebDestination(proxy.url).send(series)
    dest = DicomWebDestination(proxy.url, token="static-token")
    dest.send(series)
    assert dest.missing(series) == set()
    assert set(proxy.seen[-2:]) == {"Bearer static-token"}


@pytest.mark.orthanc
def test_a_client_credentials_token_is_fetched_once_and_reused(
        orthanc: Orthanc, tokens: TokenEndpoint, proxy_for: ProxyFactory,
        tmp_path: Path) -> None:
    proxy = proxy_for(orthanc, lambda token: token in tokens.issued)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=4), tmp_path / "s"))
    dest = client_credentials(proxy, tokens)
    assert dest.missing(series) == {i.sop_instance_uid for i in series.instances}
    dest.send(series)
    assert dest.missing(series) == set()
    assert tokens.issued == ["tok-1"] and tokens.scopes == ["dicomweb.write"]
    assert set(proxy.seen) == {"Bearer tok-1"} and len(proxy.seen) == 3


@pytest.mark.orthanc
def test_a_revoked_token_is_renewed_once(orthanc: Orthanc, tokens: TokenEndpoint,
                                         proxy_for: ProxyFactory, tmp_path: Path) -> None:
    revoked: set[str] = set()
    proxy = proxy_for(orthanc, lambda token: token in tokens.issued and token not in revoked)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=2), tmp_path / "s"))
    dest = client_credentials(proxy, tokens)
    assert dest.missing(series)  # tok-1 fetched and used
    revoked.add("tok-1")
    dest.send(series)
    assert dest.missing(series) == set()
    assert tokens.issued == ["tok-1", "tok-2"]
    assert proxy.seen[1:] == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]


@pytest.mark.orthanc
def test_an_archive_that_refuses_every_token_is_asked_twice_not_forever(
        orthanc: Orthanc, tokens: TokenEndpoint, proxy_for: ProxyFactory,
        tmp_path: Path) -> None:
    proxy = proxy_for(orthanc, lambda token: False)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "s"))
    with pytest.raises(DestinationError, match="HTTP 401"):
        client_credentials(proxy, tokens).send(series)
    assert tokens.issued == ["tok-1", "tok-2"] and len(proxy.seen) == 2


def test_a_token_is_renewed_shortly_before_it_expires(tokens: TokenEndpoint) -> None:
    now = [1000.0]
    tokens.lifetime = 600
    auth = ClientCredentials(tokens.url, CLIENT_ID, CLIENT_SECRET, clock=lambda: now[0])
    assert auth.token() == "tok-1"
    now[0] += 539  # a minute before expiry it is still used
    assert auth.token() == "tok-1"
    now[0] += 2
    assert auth.token() == "tok-2"
    tokens.lifetime = None  # no stated lifetime: kept until the archive refuses it
    now[0] += 600
    assert auth.token() == "tok-3"
    now[0] += 10**6
    assert auth.token() == "tok-3"


def test_a_refused_client_is_a_clear_error_without_the_endpoint_text(
        tokens: TokenEndpoint) -> None:
    auth = ClientCredentials(tokens.url, CLIENT_ID, "wrong-secret")
    with pytest.raises(DestinationError) as caught:
        auth.token()
    assert str(caught.value) == ("dicomweb token endpoint refused the client: HTTP 401 "
                                 "(invalid_client)")


def test_settings_build_the_client_credentials_destination(tokens: TokenEndpoint) -> None:
    settings = load_settings(destinations="dicomweb", dicomweb_url="http://127.0.0.1:1/dw",
                             dicomweb_token_url=tokens.url, dicomweb_client_id=CLIENT_ID,
                             dicomweb_client_secret=CLIENT_SECRET)
    (dest,) = build_destinations(settings)
    assert isinstance(dest, DicomWebDestination) and isinstance(dest._auth, ClientCredentials)
    assert dest._auth.token() == "tok-1"


@pytest.mark.parametrize(("overrides", "named"), [
    ({"dicomweb_username": "u", "dicomweb_token": "t"},
     "RELAY_DICOMWEB_USERNAME and RELAY_DICOMWEB_TOKEN are set"),
    ({"dicomweb_token_url": "https://idp.example/token"}, "needs RELAY_DICOMWEB_CLIENT_ID"),
    ({"dicomweb_token_url": "idp/token", "dicomweb_client_id": "c",
      "dicomweb_client_secret": "s"}, "RELAY_DICOMWEB_TOKEN_URL"),
    ({"env": "production", "deid_secret": "/78N9r1QLyux/63AIAfNTQEOWEhRGGwhThG5eRhj+mw=",
      "dicomweb_token_url": "http://idp/t",
      "dicomweb_client_id": "c", "dicomweb_client_secret": "s"}, "must be https://"),
])
def test_a_wrong_sign_in_setting_names_its_variable(overrides: dict[str, str],
                                                    named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**overrides)
