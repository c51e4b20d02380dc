"""A whole relay as separate processes on a private broker and database, for fault drills."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.pipeline import OPERATOR_ENTRY, TOKEN_ENTRY
from tests.support.isolated import PrivatePostgres, PrivateRabbit
from tests.support.services import (
    Orthanc,
    RelayProcess,
    answers,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)


@dataclass
class Stack:
    root: Path
    orthanc: Orthanc
    rabbit: PrivateRabbit
    postgres: PrivatePostgres
    settings: dict[str, object] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    procs: dict[str, RelayProcess] = field(default_factory=dict)
    kills: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "var"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, **overrides: object) -> dict[str, str]:
        base = dict(data_dir=self.data_dir, database_url=self.postgres.url,
                    amqp_url=self.rabbit.url, orthanc_url=self.orthanc.url,
                    api_port=self.api_port, api_tokens=f"{TOKEN_ENTRY},{OPERATOR_ENTRY}",
                    deid_secret="fault-drill-secret-0123456789", watch_interval=0.2,
                    retry_base_delay=0.5, shutdown_grace=20, sweep_interval=1,
                    outbox_grace=2)
        base.update(self.settings)
        base.update(overrides)
        return relay_env({}, **base)

    def start(self, name: str, service: str | None = None, **overrides: object) -> RelayProcess:
        env = self.env(**overrides)
        env["RELAY_METRICS_PORT"] = str(free_port())
        proc = RelayProcess(service or name, env, self.root / f"{name}.log").start()
        self.procs[name] = proc
        return proc

    def up(self, deid_workers: int = 1) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_relay("db", "upgrade", env=self.env())
        self.start("ingest")
        for n in range(deid_workers):
            self.start(f"deid{n}", "deid")
        self.start("sender")
        self.start("api")
        wait_until(lambda: answers(f"{self.api}/healthz", self.procs["api"]), 60, "the api")
        return self

    def kill(self, name: str) -> None:
        self.procs[name].stop(signal.SIGKILL)
        self.kills += 1

    def restart(self, name: str, service: str | None = None) -> None:
        self.kill(name)
        self.start(name, service)

    def down(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        self.procs.clear()
