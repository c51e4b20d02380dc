"""A RabbitMQ node and a PostgreSQL cluster of the test's own, so a test can restart
them without disturbing anything else that uses the machine's shared ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import free_port, port_open, wait_until

PG_BIN = Path("/usr/lib/postgresql") / (sorted(os.listdir("/usr/lib/postgresql"))[-1]
                                        if Path("/usr/lib/postgresql").is_dir() else "15") / "bin"


def _owned_dir(owner: str) -> Path:
    # Under /tmp itself: pytest's own temp folders are closed to other users.
    path = Path(tempfile.mkdtemp(prefix=f"relay-{owner}-"))
    shutil.chown(path, owner, owner if owner != "postgres" else None)
    return path


@dataclass
class PrivateRabbit:
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    node: str = field(default_factory=lambda: f"relaytest{uuid.uuid4().hex[:6]}@localhost")
    root: Path = field(default_factory=lambda: _owned_dir("rabbitmq"))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> PrivateRabbit:
        return self.launch().wait_started()

    def launch(self) -> PrivateRabbit:
        """Start the node without waiting for it (nodes of a cluster boot side by side)."""
        (self.root / "plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        shutil.chown(self.root / "plugins", "rabbitmq", "rabbitmq")
        shutil.chown(self.root / "rabbitmq.conf", "rabbitmq", "rabbitmq")
        env = dict(os.environ, RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_PORT=str(self.port),
                   RABBITMQ_DIST_PORT=str(self.dist_port),
                   RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
                   RABBITMQ_LOG_BASE=str(self.root / "log"),
                   RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "plugins"),
                   RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
                   RABBITMQ_PID_FILE=str(self.root / "pid"))
        subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True)
        return self

    def wait_started(self) -> PrivateRabbit:
        wait_until(lambda: port_open(self.port), 90, "the private RabbitMQ node")
        return self

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], capture_output=True,
                       timeout=60)
        wait_until(lambda: not port_open(self.port), 30, "RabbitMQ to stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PrivatePostgres:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: _owned_dir("postgres"))

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> PrivatePostgres:
        data = self.root / "data"
        if not data.exists():
            self.run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w",
                 "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                 "-c fsync=off", "start")
        return self

    def stop(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w",
                 "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
