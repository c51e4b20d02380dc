"""Every command the deployment runs exists in the `relay` CLI, and starts.

The commands are read from docker-compose.yml, the rendered manifests and
the Dockerfile, so a renamed or removed command fails here rather than in a
cluster. Each is then run: `--help` for all, and the services for real
against a throw-away SQLite database and work store, until their /healthz
answers (the same check the containers' health checks make).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import OVERLAYS, ROOT, relay_containers

SERVICES = ("ingest", "deid", "sender", "api")


@pytest.fixture(scope="module")
def relay() -> str:
    found = Path(sys.executable).parent / "relay"
    path = str(found) if found.exists() else shutil.which("relay")
    assert path, "the relay command is not installed: pip install -e ."
    return path


def dockerfile_commands() -> list[list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.rsplit("\nFROM ", 1)[1]
    found = []
    for instruction in ("ENTRYPOINT", "CMD"):
        match = re.search(rf"^{instruction} (\[.*\])$", runtime, re.M)
        assert match, f"no {instruction} in exec form"
        found.append(json.loads(match.group(1)))
    entrypoint, cmd = found
    assert entrypoint == ["relay"]
    health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", runtime, re.M)
    assert health, "no HEALTHCHECK in exec form"
    return [cmd, json.loads(health.group(1))[1:]]


def compose_commands(compose) -> list[list[str]]:
    found = []
    for service in compose["services"].values():
        if service["image"].split(":")[0] != "dicom-relay":
            continue
        found.append(service["command"])
        test = service.get("healthcheck", {}).get("test")
        if test:
            assert test[:2] == ["CMD", "relay"], test
            found.append(test[2:])
    return found


def manifest_commands(rendered) -> list[list[str]]:
    found = []
    for overlay in OVERLAYS:
        for _, container in relay_containers(rendered[overlay]):
            assert "command" not in container, "the image's entrypoint is relay"
            found.append(container["args"])
    return found


def subcommand(argv: list[str]) -> tuple[str, ...]:
    """The command words, without options and their values."""
    words = []
    for word in argv:
        if word.startswith("-"):
            break
        words.append(word)
    return tuple(words)


@pytest.fixture(scope="module")
def commands(compose, rendered) -> set[tuple[str, ...]]:
    every = dockerfile_commands() + compose_commands(compose) + manifest_commands(rendered)
    found = {subcommand(argv) for argv in every}
    assert {("db", "upgrade"), ("healthcheck",), *((s,) for s in SERVICES)} <= found
    return found


def test_every_command_exists(relay, commands):
    for words in sorted(commands):
        out = subprocess.run([relay, *words, "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"relay {' '.join(words)}: {out.stderr or out.stdout}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_env(tmp_path) -> dict[str, str]:
    """Defaults that need no broker, database or PACS: SQLite under a temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_DATA_DIR=str(tmp_path / "var"), RELAY_ENV="development", RELAY_SHUTDOWN_GRACE="5"
    )
    return env


def wait_healthy(relay: str, url: str, process: subprocess.Popen, env: dict[str, str]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        check = subprocess.run([relay, "healthcheck", "--url", url], env=env, timeout=30)
        if check.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def test_services_start(relay, commands, local_env, tmp_path):
    upgrade = subprocess.run(
        [relay, "db", "upgrade"], env=local_env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    started: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for name in SERVICES:
            assert (name,) in commands
            port = free_port()
            env = {
                **local_env,
                "RELAY_METRICS_PORT": str(port),
                "RELAY_API_PORT": str(port),
                "RELAY_API_HOST": "127.0.0.1",
                "RELAY_SCP_PORT": str(free_port()),
                "RELAY_SCP_HOST": "127.0.0.1",
            }
            log = (tmp_path / f"{name}.log").open("w")
            process = subprocess.Popen([relay, name], env=env, stdout=log, stderr=subprocess.STDOUT)
            started[name] = (process, f"http://127.0.0.1:{port}/healthz")
        for name, (process, url) in started.items():
            healthy = wait_healthy(relay, url, process, local_env)
            log = (tmp_path / f"{name}.log").read_text()[-3000:]
            assert healthy, f"relay {name} did not become healthy:\n{log}"
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
