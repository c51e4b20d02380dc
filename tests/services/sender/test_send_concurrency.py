"""RELAY_SEND_CONCURRENCY: how many instances the sender has in flight at once to an
Orthanc destination, seen from the receiving end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from relay_sender.destinations import OutgoingInstance, OutgoingSeries
from relay_sender.main import build_destinations
from relay_shared.settings import load_settings


class Receiver(ThreadingHTTPServer):
    """Stores nothing; takes a while per instance and counts how many overlap."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.now = self.most = 0


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.now += 1
            self.server.most = max(self.server.most, self.server.now)
        time.sleep(0.2)
        with self.server.lock:
            self.server.now -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("concurrency", [1, 6])
def test_the_sender_keeps_that_many_instances_in_flight(
        tmp_path: Path, receiver: Receiver, concurrency: int) -> None:
    settings = load_settings(data_dir=tmp_path, orthanc_url=f"http://127.0.0.1:"
                             f"{receiver.server_address[1]}", send_concurrency=concurrency)
    (orthanc,) = build_destinations(settings)
    files = []
    for n in range(12):
        path = tmp_path / f"{n}.dcm"
        path.write_bytes(b"DICM" * 10)
        files.append(OutgoingInstance(n, f"2.25.{n}", path))
    orthanc.send(OutgoingSeries(1, "2.25.100", "2.25.101", files))
    assert receiver.most == concurrency
