"""A TCP relay on loopback between a client and a server, counting the connections
it carries: how many were open at once, and how many there were in all. It shows
from outside the client how many associations or HTTP connections were in flight."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class ConnectionTap:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open = 0
        self.most_at_once = 0
        self.total = 0
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> ConnectionTap:
        self._thread.start()
        return self

    def reset(self) -> None:
        with self._lock:
            self.most_at_once = self._open
            self.total = 0

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._target, timeout=30)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open += 1
            self.total += 1
            self.most_at_once = max(self.most_at_once, self._open)
        back = threading.Thread(target=_pump, args=(server, client), daemon=True)
        back.start()
        _pump(client, server)
        back.join()
        with self._lock:
            self._open -= 1
        client.close()
        server.close()

    def stop(self) -> None:
        self._running = False
        self._listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until the source ends, then pass the end on (half close)."""
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def tapped(target_port: int) -> Iterator[ConnectionTap]:
    tap = ConnectionTap(target_port).start()
    try:
        yield tap
    finally:
        tap.stop()
