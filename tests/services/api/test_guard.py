"""What every request meets before a route: the token before the body, a size limit,
a time limit, and security headers on every answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay_shared.runtime import Runtime
from relay_shared.signing import new_private_pem
from tests.services.api.seed import TOKEN_ENTRIES, TOKENS, client, make_runtime
from tests.support.services import RelayProcess, answers, free_port, relay_env, wait_until

MiB = 1024 * 1024


def test_an_unauthenticated_body_is_refused_before_it_is_parsed(rt: Runtime) -> None:
    answer = client(rt, role=None).post("/api/v1/collections", content=b"{not json",
                                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_wrong_token_is_refused_before_the_body_is_parsed(rt: Runtime) -> None:
    answer = client(rt, role=None).post(
        "/api/v1/collections", content=b"{not json",
        headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"})
    assert answer.status_code == 401


def test_a_body_over_the_limit_is_refused_with_413(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "var", api_max_body_bytes=4096)
    api = client(runtime, role="operator")
    declared = api.post("/api/v1/collections", content=b"x" * 5000,
                        headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert "RELAY_API_MAX_BODY_BYTES" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 1000

    streamed = api.post("/api/v1/collections", content=chunks(),
                        headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    runtime.engine.dispose()


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/series/999999", "/healthz",
                                  "/metrics", "/dashboard", "/no/such/page",
                                  "/api/v1/openapi.json"])
def test_security_headers_are_on_every_response(rt: Runtime, path: str) -> None:
    headers = client(rt).get(path).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_swagger_ui_is_off_in_production(tmp_path: Path) -> None:
    development = make_runtime(tmp_path / "dev")
    assert client(development).get("/api/docs").status_code == 200
    production = make_runtime(tmp_path / "prod", env="production",
                              identifier_keys=f"k1:{'A' * 43}=", signing_key=new_private_pem())
    assert client(production).get("/api/docs").status_code == 404
    for runtime in (development, production):
        runtime.engine.dispose()


def test_a_request_longer_than_the_limit_is_answered_503(tmp_path: Path) -> None:
    # A limit no database query can meet: every route that reads one runs out of time.
    runtime = make_runtime(tmp_path / "var", api_request_timeout=1e-6)
    answer = client(runtime).get("/api/v1/series")
    assert answer.status_code == 503
    assert "RELAY_API_REQUEST_TIMEOUT" in answer.json()["detail"]
    runtime.engine.dispose()


@pytest.fixture
def api_process(tmp_path: Path) -> Iterator[tuple[str, RelayProcess]]:
    runtime = make_runtime(tmp_path / "var")
    port = free_port()
    env = relay_env({}, data_dir=tmp_path / "var", api_port=port, api_tokens=TOKEN_ENTRIES)
    proc = RelayProcess("api", env, tmp_path / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{url}/readyz", proc), 60, "relay api")
    yield url, proc
    proc.stop()
    runtime.engine.dispose()


def peak_rss_kib(proc: RelayProcess) -> int:
    assert proc.process is not None
    status = Path(f"/proc/{proc.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


def post_streaming(url: str, size: int, token: str | None) -> int | None:
    """POST `size` bytes as fast as the socket takes them; the status, if the server
    answered before closing."""
    host, port = url.removeprefix("http://").split(":")
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (f"POST /api/v1/collections HTTP/1.1\r\nHost: {host}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    chunk = b"x" * MiB
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        try:
            conn.sendall(head)
            for _ in range(size // MiB):
                conn.sendall(chunk)
        except OSError:
            pass  # the server answered and closed without reading on: that is the point
        try:
            first = conn.recv(64).decode("latin-1")
        except OSError:
            return None
    return int(first.split()[1]) if first.startswith("HTTP/1.1") else None


@pytest.mark.parametrize("token", [None, TOKENS["operator"]], ids=["anonymous", "operator"])
def test_a_300_mib_post_leaves_the_api_memory_bounded(
        api_process: tuple[str, RelayProcess], token: str | None) -> None:
    url, proc = api_process
    idle = peak_rss_kib(proc)
    status = post_streaming(url, 300 * MiB, token)
    assert status in (None, 401 if token is None else 413)
    assert proc.alive()
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    grown_mib = (peak_rss_kib(proc) - idle) / 1024
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB"
