"""The relay's containers as a platform team runs them, against the tests' own RabbitMQ,
PostgreSQL (a fresh database) and Orthanc, all on the host's loopback."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.pipeline import TOKEN_ENTRY
from tests.support.containers import Container, run_relay_container
from tests.support.services import AMQP_URL, answers, free_port, wait_until


@dataclass
class Deployment:
    image: str
    data: Path
    database_url: str
    queue_prefix: str
    orthanc_url: str
    settings: dict[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    scp_port: int = field(default_factory=free_port)
    containers: dict[str, Container] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "RELAY_DATABASE_URL": self.database_url, "RELAY_AMQP_URL": AMQP_URL,
            "RELAY_QUEUE_PREFIX": self.queue_prefix, "RELAY_ORTHANC_URL": self.orthanc_url,
            "RELAY_DEID_SECRET": "container-test-secret-0123456789",
            "RELAY_API_TOKENS": TOKEN_ENTRY, "RELAY_API_HOST": "127.0.0.1",
            "RELAY_API_PORT": str(self.api_port), "RELAY_SCP_HOST": "127.0.0.1",
            "RELAY_SCP_PORT": "0", "RELAY_STABLE_AGE": "2", "RELAY_WATCH_INTERVAL": "0.2",
            "RELAY_SHUTDOWN_GRACE": "20", "RELAY_RETRY_BASE_DELAY": "0.5",
        }
        env.update(self.settings)
        env.update(overrides)
        return env

    def migrate(self) -> None:
        result = run_relay_container("", ["db", "upgrade"], self.env(), self.data, self.image,
                                     detach=False)
        assert not isinstance(result, Container)
        assert result.returncode == 0, result.stderr[-3000:]

    def start(self, name: str, service: str, **overrides: str) -> Container:
        port = free_port()
        env = self.env(RELAY_METRICS_PORT=str(port), **overrides)
        if service == "ingest":
            env["RELAY_SCP_PORT"] = str(self.scp_port)
        container = run_relay_container(f"relay-test-{self.run_id}-{name}", [service], env,
                                        self.data, self.image)
        assert isinstance(container, Container)
        self.containers[name] = container
        self.ports[name] = self.api_port if service == "api" else port
        return container

    def wait_healthy(self) -> None:
        for name, container in self.containers.items():
            url = f"http://127.0.0.1:{self.ports[name]}/healthz"
            wait_until(lambda c=container, u=url: _healthy(c, u), 90, f"container {name}")

    def deliver_folder(self, source: Path) -> None:
        """Drop a finished series into incoming as a sender must (write, then rename),
        owned by the image's user so that ingest can move its files."""
        incoming = self.data / "incoming"
        partial = incoming / f"{source.name}.tmp{uuid.uuid4().hex[:6]}"
        shutil.copytree(source, partial)
        owner = incoming.stat()
        for path in [partial, *partial.rglob("*")]:
            os.chown(path, owner.st_uid, owner.st_gid)
        partial.rename(incoming / source.name)

    def logs(self) -> str:
        return "\n".join(f"===== {name}\n{c.logs()[-4000:]}" for name, c in self.containers.items())

    def down(self) -> None:
        for container in self.containers.values():
            container.remove()
        self.containers.clear()


def _healthy(container: Container, url: str) -> bool:
    if not container.running():
        raise AssertionError(f"{container.name} exited:\n{container.logs()[-3000:]}")
    return answers(url)
