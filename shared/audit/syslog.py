"""Audit messages to a syslog receiver: RFC 5424 messages, framed by octet counting
(RFC 5425 over TLS, RFC 6587 over plain TCP), as IHE ATNA's Record Audit Event.

A request never waits for the receiver: `offer` puts the message in a bounded queue
and returns; one thread per process writes the queue out, reconnecting with a
growing pause while the receiver is away. When the queue is full the new message
is dropped and counted (relay_audit_messages_dropped_total); each entry is also in
the database, where nothing is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import ssl
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relay_shared.audit.atna import AuditSource, message
from relay_shared.audit.trail import AuditEntry
from relay_shared.db import PROCESS_NAME
from relay_shared.metrics import AUDIT_MESSAGES_DROPPED, AUDIT_MESSAGES_SENT

if TYPE_CHECKING:
    from relay_shared.settings import Settings

log = logging.getLogger(__name__)
# authpriv (10), notice (5); a failure (a refused sign-in, a denied act) is a warning (4).
FACILITY_AUTHPRIV = 10
NOTICE, WARNING = 5, 4
MSGID = "IHE+RFC-3881"
MAX_PAUSE_SECONDS = 30.0
BOM = b"\xef\xbb\xbf"


def frame(entry: AuditEntry, source: AuditSource, app_name: str) -> bytes:
    """One RFC 5424 message carrying the entry's audit message, with its octet count."""
    severity = NOTICE if entry.outcome == "success" else WARNING
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    header = (f"<{FACILITY_AUTHPRIV * 8 + severity}>1 {stamp} {source.host} {app_name} "
              f"{os.getpid()} {MSGID} - ").encode()
    body = header + BOM + message(entry, source)
    return f"{len(body)} ".encode() + body


class SyslogSender:
    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None,
                 source: AuditSource, capacity: int, connect_timeout: float = 10.0) -> None:
        self._address = (host, port)
        self._tls = tls
        self._source = source
        self._queue: queue.Queue[AuditEntry | None] = queue.Queue(maxsize=capacity)
        self._timeout = connect_timeout
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="audit-syslog", daemon=True)
        self._stopping = threading.Event()

    def start(self) -> SyslogSender:
        self._thread.start()
        return self

    def offer(self, entry: AuditEntry) -> bool:
        """Queue the entry's message; False (and counted) if the queue is full."""
        try:
            self._queue.put_nowait(entry)
            return True
        except queue.Full:
            AUDIT_MESSAGES_DROPPED.inc()
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to `timeout` seconds, then stop."""
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._disconnect()

    def _run(self) -> None:
        pause = 0.5
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            data = frame(entry, self._source, self._source.source_id)
            while True:
                try:
                    self._send(data)
                    AUDIT_MESSAGES_SENT.inc()
                    pause = 0.5
                    break
                except OSError as exc:
                    self._disconnect()
                    if self._stopping.is_set():
                        return
                    log.warning("audit syslog receiver unreachable, retrying",
                                extra={"error": type(exc).__name__, "pause_s": pause})
                    time.sleep(pause)
                    pause = min(pause * 2, MAX_PAUSE_SECONDS)

    def _send(self, data: bytes) -> None:
        if self._socket is None:
            raw = socket.create_connection(self._address, timeout=self._timeout)
            try:
                self._socket = (self._tls.wrap_socket(raw, server_hostname=self._address[0])
                                if self._tls else raw)
            except OSError:
                raw.close()
                raise
        self._socket.sendall(data)

    def _disconnect(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None


def sender_for(settings: Settings) -> SyslogSender | None:
    """The sender RELAY_AUDIT_SYSLOG names, started; None when it is not set."""
    address = settings.audit_syslog_address
    if address is None:
        return None
    scheme, host, port = address
    tls = None
    if scheme == "tls":
        ca = settings.audit_syslog_ca or settings.tls_ca_bundle
        tls = ssl.create_default_context(cafile=str(ca) if ca else None)
        if settings.audit_syslog_cert and settings.audit_syslog_key:
            tls.load_cert_chain(settings.audit_syslog_cert, settings.audit_syslog_key)
    source = AuditSource(settings.audit_source_id, PROCESS_NAME, socket.gethostname(),
                         settings.audit_enterprise_site)
    return SyslogSender(host, port, tls, source, settings.audit_syslog_queue).start()
