"""What every service process shares: building its parts, serving probes, stopping well."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import text
from sqlalchemy.engine import Engine

from relay_shared import audit, filemodes, ops_gauges, outbox, transitions
from relay_shared.amqp import AmqpBus
from relay_shared.audit import exports as audit_exports
from relay_shared.audit.syslog import sender_for
from relay_shared.bus import Bus, InProcessBus, RetryPolicy, describe
from relay_shared.db import make_engine, require_current_schema
from relay_shared.deid import Pseudonymizer
from relay_shared.logs import enable_phi_debug, series_context
from relay_shared.messages import SeriesMessage
from relay_shared.metrics import CONTENT_TYPE, IN_FLIGHT, STAGE_SECONDS, exposition
from relay_shared.models import Stage
from relay_shared.notify import delivery as notify_delivery
from relay_shared.notify import record as notify_record
from relay_shared.paths import WorkStore
from relay_shared.production import (
    Insecure,
    UnsafeInProduction,
    check_for_service,
    weak_secret,
)
from relay_shared.projects import ProjectsRegistry
from relay_shared.retention import purge
from relay_shared.series_state import mark_failed, note_failed_attempt
from relay_shared.settings import Settings
from relay_shared.vault import IdentifierVault, derive_key, parse_keys

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    bus: Bus
    store: WorkStore
    # The projects in force (RELAY_PROJECTS, or the implicit `default`), reread on change.
    projects: ProjectsRegistry

    # Built when a service first needs them: in production each refuses a missing key
    # there, so a pod that never uses the deid secret or the vault is not given them.
    @cached_property
    def pseudonymizer(self) -> Pseudonymizer:
        if not self.settings.deid_secret_given:
            check_for_service(self.settings, weak_secret())
        return Pseudonymizer(self.settings.deid_secret.get_secret_value().encode(),
                             self.settings.deid_key_id)

    @cached_property
    def vault(self) -> IdentifierVault:
        return make_vault(self.settings)


def make_bus(settings: Settings) -> Bus:
    retry = RetryPolicy(max_attempts=settings.max_attempts, base_delay=settings.retry_base_delay)
    if settings.amqp_url:
        return AmqpBus(settings.amqp_url, retry)
    return InProcessBus(retry)


def build_runtime(settings: Settings, bus: Bus | None = None) -> Runtime:
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    require_current_schema(engine)
    transitions.install(audit_exports.exported)
    notify_record.install(engine, settings.webhooks)
    audit.install(sender_for(settings))
    assert settings.work_dir is not None and settings.quarantine_dir is not None
    projects = ProjectsRegistry(settings)
    projects.on_reload = configuration_recorder(engine, settings)
    return Runtime(
        settings=settings,
        engine=engine,
        bus=bus or make_bus(settings),
        store=WorkStore(settings.work_dir, settings.quarantine_dir),
        projects=projects,
    )


def _service_name(service: ServiceMain) -> str:
    return str(getattr(service, "__module__", "relay")).split(".")[0].removeprefix("relay_")


def configuration_recorder(engine: Engine, settings: Settings
                           ) -> Callable[[bool, str | None, str], None]:
    """A projects file reread (or refused) by this process, as an audit entry."""
    path = str(settings.projects) if settings.projects else "projects file"

    def recorded(applied: bool, sha256: str | None, what: str) -> None:
        audit.write(engine, audit.AuditEntry(
            action=audit.Action.CONFIGURATION, actor=audit_exports.ACTOR, actor_kind="system",
            outcome=audit.Outcome.SUCCESS if applied else audit.Outcome.FAILURE, what=what,
            objects=(audit.AuditObject("configuration", path,
                                       f"sha256:{sha256}" if sha256 else None),)))
    return recorded


def make_vault(settings: Settings) -> IdentifierVault:
    if settings.identifier_keys:
        return IdentifierVault(parse_keys(settings.identifier_keys))
    # A laptop's convenience; production keeps the vault's key apart from the deid secret.
    check_for_service(settings, UnsafeInProduction(
        "RELAY_IDENTIFIER_KEYS", "not set, so the vault's key would be derived from the deid "
        "secret", Insecure.DERIVED_VAULT_KEY))
    secret = settings.deid_secret.get_secret_value().encode()
    return IdentifierVault({settings.deid_key_id: derive_key(secret, settings.deid_key_id)})


def database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not ready"; the probe must not raise
        return False


def probe_app(rt: Runtime) -> FastAPI:
    """The small HTTP port of a worker: liveness, readiness, metrics."""
    app = FastAPI(title="relay worker probes", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, bool]:
        checks = {"database": await asyncio.to_thread(database_ok, rt.engine),
                  "bus": await rt.bus.is_healthy()}
        response.status_code = 200 if all(checks.values()) else 503
        return checks

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE)

    return app


class PortInUse(OSError):
    """Another process holds the port a setting names."""


def bind_port(variable: str, host: str, port: int) -> socket.socket:
    """Bound here rather than by uvicorn, so a taken port is one line naming its setting
    (several relay processes on one host each need their own)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{variable}={port} is in use on {host}: another process holds "
                            "it; give each relay process on a host its own") from None
        raise
    return sock


async def serve_http(app: FastAPI, sock: socket.socket, stop: asyncio.Event) -> None:
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await stop.wait()
    server.should_exit = True
    await task


async def sweep(rt: Runtime, stop: asyncio.Event, requeue_stuck: bool) -> None:
    """Publish what a crashed process committed but never sent; with ``requeue_stuck``
    (one process of a deployment: the one running ingest) also re-send series that
    sat too long in a working state."""
    queues = {Stage.DEID: rt.settings.deid_queue, Stage.SEND: rt.settings.send_queue}
    # Nothing survives an in-process bus, so at its start every waiting series is stuck.
    stuck_after = timedelta(0) if isinstance(rt.bus, InProcessBus) else \
        timedelta(seconds=rt.settings.stuck_after)
    next_purge = 0.0
    while not stop.is_set():
        try:
            # First: what follows fails when a dependency is down.
            await refresh_gauges(rt.settings, rt.engine, rt.bus)
            await outbox.flush(rt.engine, rt.bus,
                               older_than=timedelta(seconds=rt.settings.outbox_grace))
            if requeue_stuck:
                count = await outbox.requeue_stuck(rt.engine, rt.bus, queues, stuck_after)
                if count:
                    log.warning("requeued stuck series", extra={"count": count})
                next_purge = await _purge_when_due(rt, next_purge)
        except Exception:  # a dependency is down: try again on the next round
            log.warning("sweep failed", exc_info=True)
        stuck_after = timedelta(seconds=rt.settings.stuck_after)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rt.settings.sweep_interval)


async def refresh_gauges(settings: Settings, engine: Engine, bus: Bus) -> None:
    ops_gauges.record_dependencies(database=await asyncio.to_thread(database_ok, engine),
                                   broker=await bus.is_healthy())
    ops_gauges.record_certificates(settings)


async def _purge_when_due(rt: Runtime, due: float) -> float:
    """Run the retention purge every RELAY_PURGE_INTERVAL; returns when it is due next."""
    now = asyncio.get_running_loop().time()
    if now < due:
        return due
    report = await asyncio.to_thread(purge, rt.engine, rt.store, rt.settings)
    log.info("retention purge", extra={"originals": len(report.originals),
                                       "quarantine": len(report.quarantine),
                                       "failed_work": len(report.failed_work)})
    return now + rt.settings.purge_interval


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


ServiceMain = Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]]


async def run_services(settings: Settings, services: list[ServiceMain],
                       probes_port: int | None, requeue_stuck: bool = False,
                       bus: Bus | None = None) -> None:
    """Run services in this process until SIGTERM/SIGINT, then drain within the grace.
    A service that dies stops the process with its error, rather than leaving a
    half-working process that probes would still call alive."""
    enable_phi_debug(settings.log_phi_debug)
    filemodes.secure(settings)
    probes = bind_port("RELAY_METRICS_PORT", settings.api_host, probes_port) \
        if probes_port else None
    rt = build_runtime(settings, bus)
    audit.write(rt.engine, audit.AuditEntry(
        action=audit.Action.START, actor=audit_exports.ACTOR, actor_kind="system",
        what=f"{', '.join(_service_name(s) for s in services)} started; "
             f"projects file version {rt.projects.current.sha256 or 'none (implicit)'}"))
    stop = asyncio.Event()
    stop_on_signals(stop)
    await rt.bus.connect()
    tasks = [asyncio.create_task(service(rt, stop)) for service in services]
    tasks.append(asyncio.create_task(sweep(rt, stop, requeue_stuck)))
    if requeue_stuck and settings.webhooks:  # one deliverer keeps each hook's order
        tasks.append(asyncio.create_task(notify_delivery.run(rt.engine, settings, stop)))
    tasks.append(asyncio.create_task(rt.projects.watch(stop)))
    if probes:
        tasks.append(asyncio.create_task(serve_http(probe_app(rt), probes, stop)))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failure = next((t.exception() for t in tasks if t.done() and t.exception()), None)
    stop.set()
    in_hand = not await rt.bus.wait_idle(0)
    log.info("stopping", extra={"grace_s": settings.shutdown_grace, "in_hand": in_hand})
    await rt.bus.stop_consuming()
    _, pending = await asyncio.wait(tasks, timeout=settings.shutdown_grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    work_left = not await rt.bus.wait_idle(0)
    await rt.bus.close()  # a message still in hand goes back to its queue
    sender = audit.uninstall()
    if sender is not None:  # what is queued gets a few seconds to reach the receiver
        await asyncio.to_thread(sender.close)
    rt.engine.dispose()
    if failure is not None:
        raise failure
    if work_left:
        # The handler's thread cannot be interrupted and Python would wait for it at exit;
        # its work is idempotent and its message is back in the queue, so leave now.
        log.warning("shutdown grace ran out; the message in hand was handed back to its queue",
                    extra={"grace_s": settings.shutdown_grace})
        logging.shutdown()
        os._exit(0)
    log.info("stopped; the message in hand was finished first" if in_hand
             else "stopped; no message was in hand")


async def consume_until_stopped(rt: Runtime, stop: asyncio.Event, queue: str,
                                work: Callable[[int], None], stage: Stage) -> None:
    """Run ``work(series_id)`` for each message, in a thread, then publish what it queued."""

    async def handle(message: SeriesMessage, attempt: int) -> None:
        series_context.set({"series_id": message.series_id, "trace_id": message.trace_id,
                            "attempt": attempt})
        with IN_FLIGHT.labels(stage=stage.value).track_inprogress(), \
                STAGE_SECONDS.labels(stage=stage.value).time():
            try:
                await asyncio.to_thread(work, message.series_id)
            except Exception as exc:
                await asyncio.to_thread(note_failed_attempt, rt.engine, message.series_id,
                                        stage, attempt, describe(exc))
                raise
        if rt.settings.fault_exit_after_commit == stage.value:
            log.error("fault injection: exiting between commit and publish")
            os._exit(137)
        await outbox.flush(rt.engine, rt.bus, series_id=message.series_id)

    async def give_up(message: SeriesMessage, error: str) -> None:
        await asyncio.to_thread(mark_failed, rt.engine, message.series_id, error, stage)

    # The worker's context (the guard's rules, the profile's tables) is built by now and
    # kept for its life: out of the collector's reach like start-up's (relay_cli.main).
    gc.freeze()
    await rt.bus.consume(queue, handle, give_up)
    await stop.wait()
    await rt.bus.wait_idle(rt.settings.shutdown_grace)  # run_services says how it ended
