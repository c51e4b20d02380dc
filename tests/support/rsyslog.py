"""rsyslog (Debian's, with its gtls driver from rsyslog-gnutls) on loopback, receiving
syslog over TLS (RFC 5425) with a test CA's server certificate, and writing each
message it receives as one JSON line."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.certs import Pki
from tests.support.services import ensure_debian_packages, free_port

RSYSLOGD = "/usr/sbin/rsyslogd"
CONFIG = """
global(workDirectory="{work}" maxMessageSize="64k"
       defaultNetstreamDriver="gtls"
       defaultNetstreamDriverCAFile="{ca}"
       defaultNetstreamDriverCertFile="{cert}"
       defaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
       streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="received" type="list") {{
  constant(value="{{")
  property(name="pri" format="jsonf" outname="pri") constant(value=",")
  property(name="app-name" format="jsonf" outname="app") constant(value=",")
  property(name="msgid" format="jsonf" outname="msgid") constant(value=",")
  property(name="protocol-version" format="jsonf" outname="version") constant(value=",")
  property(name="msg" format="jsonf" outname="msg")
  constant(value="}}\\n")
}}
action(type="omfile" file="{out}" template="received")
"""


@dataclass
class Rsyslog:
    folder: Path
    pki: Pki
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def received_file(self) -> Path:
        return self.folder / "received.jsonl"

    def start(self) -> Rsyslog:
        ensure_debian_packages((RSYSLOGD, "rsyslog"),
                               ("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so",
                                "rsyslog-gnutls"))
        leaf = self.pki.issue("rsyslog", "127.0.0.1")
        work = self.folder / "work"
        work.mkdir(parents=True, exist_ok=True)
        config = self.folder / "rsyslog.conf"
        config.write_text(CONFIG.format(work=work, ca=self.pki.ca, cert=leaf.cert,
                                        key=leaf.key, port=self.port,
                                        out=self.received_file))
        log = (self.folder / "rsyslogd.log").open("wb")
        self.process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(config), "-i", str(self.folder / "rsyslogd.pid")],
            stdout=log, stderr=subprocess.STDOUT)
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError("rsyslogd exited: "
                                   + (self.folder / "rsyslogd.log").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("rsyslogd did not listen in 20 s")

    def received(self) -> list[dict[str, Any]]:
        if not self.received_file.exists():
            return []
        return [json.loads(line) for line in self.received_file.read_text().splitlines()
                if line.strip()]

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.received()
            if len(messages) >= count:
                return messages
            time.sleep(0.2)
        raise AssertionError(f"rsyslog received {len(self.received())} message(s), "
                             f"expected {count}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
