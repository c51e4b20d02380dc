"""A webhook receiver on loopback, as a site would run one: it checks each request's
signature and timestamp the way docs/operations.md tells receivers to, and keeps what
it accepted in arrival order."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_AGE = 300


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """The receiver's check, written apart from the relay's signing code."""
    if abs(time.time() - int(timestamp)) > MAX_AGE:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


@dataclass
class Receiver:
    port: int
    secret: bytes
    answer: int = 204
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = verify(receiver.secret, self.headers.get("X-Relay-Timestamp", "0"),
                                body, self.headers.get("X-Relay-Signature", ""))
                status = receiver.answer if signed else 401
                if signed and status < 300:
                    receiver.accepted.append({"delivery": self.headers["X-Relay-Delivery"],
                                              "event": self.headers["X-Relay-Event"],
                                              "body": json.loads(body)})
                else:
                    receiver.refused += 1
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"
