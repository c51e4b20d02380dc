"""What every DICOM association of the relay, accepted or opened, is tuned with."""

from __future__ import annotations

import contextlib
import socket

from pynetdicom import evt

DUL_POLL_DELAY = 0.0002


def tune_connection(event: evt.Event) -> None:
    """Without TCP_NODELAY every C-STORE waits for the peer's delayed ACK. pynetdicom's
    reader thread sleeps 1 ms whenever it finds nothing to do, which alone costs a
    few ms per instance; it polls faster while this association is open."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        with contextlib.suppress(OSError):
            sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    event.assoc.dul._run_loop_delay = DUL_POLL_DELAY
