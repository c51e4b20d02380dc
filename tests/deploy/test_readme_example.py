"""The README's multi-process example runs as written: every process it starts stays up.

The commands are read from the README, so an example that stops working (two workers
on one metrics port, say) fails here. Its ports are moved to free ones for the run,
keeping which processes share a port, so the test never takes a port of the machine's.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_shared.settings import Settings
from tests.support.services import (
    AMQP_URL,
    RelayProcess,
    answers,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)

from .conftest import ROOT

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def readme_example() -> tuple[list[str], list[tuple[dict[str, str], list[str]]]]:
    """The exported variable names, and each backgrounded command with its own variables."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"### Pointing it at RabbitMQ.*?```\n(.*?)```", text, re.S)
    assert block, "the README's multi-process example is gone"
    exported, commands = [], []
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("export "):
            exported.append(line.removeprefix("export ").split("=", 1)[0])
        elif line.endswith("&"):
            for part in filter(None, (p.strip() for p in line.split("&"))):
                words = shlex.split(part)
                assignments = dict(w.split("=", 1) for w in words if re.match(r"^\w+=", w))
                commands.append((assignments, words[len(assignments):]))
    return exported, commands


def test_the_example_gives_each_process_its_own_ports() -> None:
    _, commands = readme_example()
    default = Settings.model_fields["metrics_port"].default
    workers = [(env, words) for env, words in commands if words[1] != "api"]
    assert len(workers) >= 4
    ports = [int(env.get("RELAY_METRICS_PORT", default)) for env, _ in workers]
    assert len(set(ports)) == len(ports), f"metrics ports shared: {ports}"


@pytest.fixture
def started(tmp_path: Path, postgres_url: str, queue_prefix: str
            ) -> Iterator[list[tuple[RelayProcess, str]]]:
    exported, commands = readme_example()
    assert {"RELAY_AMQP_URL", "RELAY_DATABASE_URL"} <= set(exported)
    api_port = free_port()
    base = relay_env({}, data_dir=tmp_path / "var", amqp_url=AMQP_URL,
                     database_url=postgres_url, queue_prefix=queue_prefix,
                     deid_secret="readme-example-secret-0123456789", api_port=api_port,
                     pixel_ocr="false")
    run_relay("db", "upgrade", env=base)
    moved: dict[str, str] = {}
    running: list[tuple[RelayProcess, str]] = []
    default = str(Settings.model_fields["metrics_port"].default)
    for n, (assignments, words) in enumerate(commands):
        assert words[0] == "relay", words
        env = {**base, "RELAY_METRICS_PORT": default, **assignments}
        env["RELAY_METRICS_PORT"] = moved.setdefault(env["RELAY_METRICS_PORT"], str(free_port()))
        port = api_port if words[1] == "api" else int(env["RELAY_METRICS_PORT"])
        proc = RelayProcess(words[1], env, tmp_path / f"{n}-{words[1]}.log").start()
        running.append((proc, f"http://127.0.0.1:{port}/healthz"))
    yield running
    for proc, _ in running:
        proc.stop()


def test_the_example_starts_every_process(started: list[tuple[RelayProcess, str]]) -> None:
    for proc, healthz in started:
        wait_until(lambda p=proc, u=healthz: answers(u, p), 60, f"relay {proc.service}")
    time.sleep(2)  # a process that loses a race for a port dies just after the others start
    assert all(proc.alive() for proc, _ in started)
