"""Real services for the tests: PostgreSQL databases, RabbitMQ queues, Orthanc, relay processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PG_ADMIN_URL = os.environ.get("RELAY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("RELAY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ORTHANC_PLUGINS = Path("/usr/share/orthanc/plugins")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
               ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def end(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate a server the tests started, killing it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ensure_postgres() -> None:
    if not port_open(5432):
        versions = os.listdir("/etc/postgresql")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main",
                        "start"], check=True)
        wait_until(lambda: port_open(5432), 60, "PostgreSQL")


def ensure_rabbitmq() -> None:
    if not port_open(5672):
        subprocess.run(["rabbitmq-server", "-detached"], check=True)
        wait_until(lambda: port_open(5672), 120, "RabbitMQ")


def ensure_debian_packages(*commands_and_packages: tuple[str, str]) -> None:
    """Install a Debian package when its command is missing (the machines run as root)."""
    missing = [pkg for command, pkg in commands_and_packages
               if shutil.which(command) is None and not Path(command).exists()]
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def create_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    ensure_postgres()
    name = f"relay_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def delete_queues(prefix: str) -> None:
    """Remove the queues a test run declared, so runs never see each other's messages."""
    import asyncio

    import aio_pika

    from relay_shared.amqp import Topology
    from relay_shared.bus import RetryPolicy

    # Retry tiers are named by their delay: those of every base delay the tests use.
    names = set()
    for stage in ("deid", "send"):
        for base in (0.1, 0.2, 0.5, 1.0, 2.0):
            topology = Topology.of(f"{prefix}.{stage}", RetryPolicy(100, base))
            names.update(name for name, _ in topology.declarations())

    async def go() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            for name in sorted(names):
                channel = await connection.channel()
                # A queue this run never declared closes the channel with 404: fine.
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
    asyncio.run(go())


@dataclass
class Orthanc:
    root: Path
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    aet: str = "ORTHANC"
    process: subprocess.Popen[bytes] | None = None
    modalities: dict[str, list[object]] = field(default_factory=dict)
    # More configuration options, over the defaults below.
    options: dict[str, object] = field(default_factory=dict)
    lua_scripts: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> Orthanc:
        ensure_debian_packages(("/usr/sbin/Orthanc", "orthanc"),
                               (str(ORTHANC_PLUGINS / "libOrthancDicomWeb.so"), "orthanc-dicomweb"))
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "relay-test", "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"), "HttpPort": self.http_port,
            "DicomPort": self.dicom_port, "DicomAet": self.aet,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "Plugins": [str(ORTHANC_PLUGINS / "libOrthancDicomWeb.so")],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "DicomModalities": self.modalities, "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False, "StableAge": 2, "SaveJobs": False,
            "HttpServerEnabled": True, "DicomServerEnabled": True,
            "LuaScripts": [str(script) for script in self.lua_scripts], **self.options,
        }
        (self.root / "orthanc.json").write_text(json.dumps(config))
        log = open(self.root / "orthanc.log", "wb")  # noqa: SIM115 - lives as long as Orthanc
        self.process = subprocess.Popen(["/usr/sbin/Orthanc", str(self.root / "orthanc.json")],
                                        stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 60, "Orthanc")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"Orthanc exited: {(self.root / 'orthanc.log').read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/system", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def instances(self) -> list[str]:
        return list(httpx.get(f"{self.url}/instances", timeout=30).json())

    def clear(self) -> None:
        for patient in httpx.get(f"{self.url}/patients", timeout=30).json():
            httpx.delete(f"{self.url}/patients/{patient}", timeout=30)

    def instance_tags(self, instance_id: str) -> dict[str, object]:
        return dict(httpx.get(f"{self.url}/instances/{instance_id}/simplified-tags",
                              timeout=30).json())


@dataclass
class RelayProcess:
    """One `relay <service>` process, with its own log file."""

    service: str
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)  # after the service's name

    def start(self) -> RelayProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        relay = str(Path(sys.executable).with_name("relay"))
        self.process = subprocess.Popen([relay, self.service, *self.args], env=self.env,
                                        stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.cwd)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        if self.process is None:
            return None
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def relay_env(base: dict[str, str], **settings: object) -> dict[str, str]:
    """The environment of a relay process under test. Its DICOM listener is off
    unless a test gives it a port: the default 11112 is never a test's to take."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["RELAY_SCP_PORT"] = "0"
    env.update(base)
    env.update({f"RELAY_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def run_relay(*args: str, env: dict[str, str], check: bool = True, cwd: Path | None = None
              ) -> subprocess.CompletedProcess[str]:
    relay = str(Path(sys.executable).with_name("relay"))
    result = subprocess.run([relay, *args], env=env, capture_output=True, text=True,
                            timeout=120, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"relay {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr[-3000:]}")
    return result


def print_logs(paths: Iterable[Path], lines: int = 40) -> None:
    for path in sorted(paths):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        print(f"===== {path.name}", *tail, sep="\n")


def answers(url: str, process: RelayProcess | None = None) -> bool:
    """Whether ``url`` answers 200 yet; a process that has died is a failure, not a wait."""
    if process is not None and not process.alive():
        tail = process.log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"relay {process.service} exited:\n{tail}")
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
