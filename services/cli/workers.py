"""`relay up --workers N`: de-identification in N processes of their own.

De-identification is Python work on every element of every header: in one process
it runs on one core, whatever the machine has. `relay up` therefore starts N
`relay deid` processes beside itself, on the same database and the same bus (the
SQLite bus file of the data folder when there is no broker). Each sends series too
(the sender's work per instance is of the order of de-identification's), unless the
sender must be one process; `relay up` keeps ingest and the api. It watches them: one
that dies has its claimed messages handed back (the attempt counted) and is started
again; at shutdown each is asked to finish its series within the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from relay_shared import metrics
from relay_shared.runtime import Runtime, ServiceMain
from relay_shared.settings import Destination as DestinationName
from relay_shared.settings import Settings
from relay_shared.sqlite_bus import SqliteBus

log = logging.getLogger(__name__)

# Exit codes of `relay` that mean a setting or the schema is wrong (see main._run):
# starting again would fail the same way.
CONFIGURATION_EXITS = {2, 3}
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
# A worker that ran this long before dying starts again without delay growth.
HEALTHY_RUN = 60.0
PARENT_CHECK = 1.0


class ConfigurationRefused(RuntimeError):
    """A worker refused its configuration at start; `relay up` stops with it."""


def sender_may_share(settings: Settings) -> bool:
    """Whether the workers may send too, each its own series: not when a sender must be
    one process (it listens for storage commitment reports on one port, or dispatches
    whole studies of a projects file)."""
    return settings.projects is None and not (
        DestinationName.DICOM in (settings.destinations or [])
        and settings.dicom_verify == "commitment")


def worker_command(bus_file: Path | None, with_sender: bool = False) -> list[str]:
    command = [sys.executable, "-c", "from relay_cli.main import main; main()", "deid",
               "--worker-of", str(os.getpid())]
    if bus_file is not None:
        command += ["--bus-file", str(bus_file)]
    if with_sender:
        command.append("--with-sender")
    return command


def process_name(pid: int) -> str:
    """The name a process of this host gives itself (relay_shared.db.PROCESS_NAME)."""
    return f"{socket.gethostname()}:{pid}"


class Worker:
    def __init__(self, number: int, command: list[str]) -> None:
        self.number = number
        self._command = command
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.delay = RESTART_DELAY

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(*self._command)
        self.started_at = asyncio.get_running_loop().time()
        log.info("deid worker started", extra={"worker": self.number, "pid": self.process.pid})


def supervise(count: int, bus_file: Path | None, with_sender: bool = False) -> ServiceMain:
    """A service of `relay up` that runs ``count`` deid worker processes until stopped
    (``with_sender``: each sends the series it de-identified, and others', too)."""

    async def run(rt: Runtime, stop: asyncio.Event) -> None:
        workers = [Worker(n, worker_command(bus_file, with_sender)) for n in range(count)]
        for worker in workers:
            await worker.start()
        try:
            await _watch(rt, workers, stop)
        finally:
            await _stop_all(rt, workers)

    return run


async def _watch(rt: Runtime, workers: list[Worker], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        waits = {asyncio.create_task(w.process.wait()): w for w in workers if w.process}
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *waits], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopping, *waits]:
            if task not in done:
                task.cancel()
        if stop.is_set():
            return
        for task in done - {stopping}:
            worker = waits[task]
            assert worker.process is not None
            code, pid = worker.process.returncode, worker.process.pid
            handed_back = _hand_back(rt, pid)
            metrics.process_gone(pid)
            log.error("deid worker exited; starting it again", extra={
                "worker": worker.number, "pid": pid, "exit_code": code,
                "messages_handed_back": handed_back})
            if code in CONFIGURATION_EXITS:
                raise ConfigurationRefused(f"deid worker {worker.number} refused to start "
                                           f"(exit code {code}); its message is above")
            healthy = loop.time() - worker.started_at >= HEALTHY_RUN
            worker.delay = RESTART_DELAY if healthy else min(worker.delay * 2,
                                                              RESTART_DELAY_MAX)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), worker.delay)
            if not stop.is_set():
                await worker.start()


def _hand_back(rt: Runtime, pid: int) -> int:
    if isinstance(rt.bus, SqliteBus):
        return rt.bus.release(process_name(pid))
    return 0  # RabbitMQ hands back a dead consumer's message by itself


async def _stop_all(rt: Runtime, workers: list[Worker]) -> None:
    running = [w.process for w in workers if w.process and w.process.returncode is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    # Each finishes its series within the grace; `relay up` gives its own services the
    # same grace before it cancels them, this one included.
    grace = max(1.0, rt.settings.shutdown_grace - 1)
    waits = [asyncio.create_task(p.wait()) for p in running]
    if waits:
        _, late = await asyncio.wait(waits, timeout=grace)
        for process in running:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*late, return_exceptions=True)
    for process in running:
        _hand_back(rt, process.pid)
        metrics.process_gone(process.pid)


def follow_parent(parent: int) -> ServiceMain:
    """A worker of `relay up` stops when `relay up` is gone (killed without a word)."""

    async def run(_rt: Runtime, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if os.getppid() != parent:
                log.warning("relay up is gone; this deid worker stops")
                stop.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK)

    return run
