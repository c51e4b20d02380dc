"""The `relay` command: every service, and the chores around them, in one entry point."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from relay_cli import deid_tools
from relay_cli.config_check import config_app
from relay_cli.projects import projects_app
from relay_cli.provenance import signing_key_app, verify
from relay_shared.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="DICOM Relay: receive, de-identify and pass on DICOM series.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(projects_app, name="projects")
app.add_typer(config_app, name="config")
app.add_typer(signing_key_app, name="signing-key")
app.command()(verify)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(2) from None
    from relay_shared import filemodes
    filemodes.restrict(settings.shared_group_access)  # before any file is made
    return settings


def _run(service_names: list[str], probes: bool, upgrade_first: bool = False,
         workers: int = 1, bus_file: Path | None = None, worker_of: int | None = None) -> None:
    """Run services in this process; with ``workers`` > 1 deid runs in that many
    processes of its own instead (`relay up`); ``worker_of`` is such a process."""
    settings = _settings()
    if workers > 1:
        _count_across_processes(settings.data_dir / ".metrics")
    from relay_cli import workers as worker_pool
    from relay_shared import logs
    from relay_shared.db import SchemaOutOfDate, upgrade
    from relay_shared.runtime import run_services

    _exit_on_missing_tools(settings, service_names)
    logs.configure("+".join(service_names), settings.log_level)
    if upgrade_first:
        settings.ensure_dirs()
        upgrade(settings.sqlalchemy_url)
    mains = [_service_main(name) for name in service_names]
    if workers > 1:
        in_workers = ["deid", *(["sender"] if worker_pool.sender_may_share(settings) else [])]
        for name in in_workers:
            mains.remove(_service_main(name))
        bus_file = None if settings.amqp_url else settings.data_dir / "bus.db"
        mains.append(worker_pool.supervise(workers, bus_file, "sender" in in_workers))
    if worker_of is not None:
        mains.append(worker_pool.follow_parent(worker_of))
    bus = _file_bus(settings, bus_file, recover=worker_of is None) if bus_file else None
    # What start-up made (modules, the dicom dictionary, the ORM's and pydantic's
    # classes) lives as long as the process: kept out of the collector's reach, a full
    # collection no longer walks it. It was a sixth of a worker's time under the GIL
    # and more of `relay up`'s own, on a run of 1,000 instances.
    gc.freeze()
    try:
        asyncio.run(run_services(settings, mains, settings.metrics_port if probes else None,
                                 requeue_stuck="ingest" in service_names, bus=bus))
    except SchemaOutOfDate as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(3) from None
    except Exception as exc:  # a start-up failure is reported plainly, not as a traceback
        from relay_api.auth import TokenConfigError
        from relay_shared.deid import DeidConfigError
        from relay_shared.pixels import OcrUnavailable
        from relay_shared.production import RequiredInProduction, UnsafeInProduction
        from relay_shared.projects import ProjectsError
        from relay_shared.runtime import PortInUse
        from relay_shared.signing import SigningKeyError
        if isinstance(exc, TokenConfigError | DeidConfigError | ProjectsError
                      | UnsafeInProduction | OcrUnavailable | PortInUse
                      | RequiredInProduction | SigningKeyError
                      | worker_pool.ConfigurationRefused):
            typer.echo(f"relay: {exc}", err=True)
            raise typer.Exit(2) from None
        raise


def _count_across_processes(folder: Path) -> None:
    """Prometheus' multiprocess mode for `relay up` and its workers (who inherit the
    variable): set before the metrics are first imported, emptied of a previous run."""
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _file_bus(settings: Settings, path: Path, recover: bool):  # type: ignore[no-untyped-def]
    """The SQLite bus of `relay up` and its workers. `relay up` starts by handing back
    whatever its processes of a previous run left claimed: none of them is alive."""
    from relay_shared.bus import RetryPolicy
    from relay_shared.sqlite_bus import SqliteBus

    bus = SqliteBus(path, RetryPolicy(max_attempts=settings.max_attempts,
                                      base_delay=settings.retry_base_delay))
    if recover:
        bus.recover()
    return bus


def _exit_on_missing_tools(settings: Settings, service_names: list[str]) -> None:
    from relay_shared.preflight import problems

    found = problems(settings, service_names)
    for problem in found:
        typer.echo(f"relay: {problem}", err=True)
    if found:
        raise typer.Exit(2)


def _service_main(name: str):  # type: ignore[no-untyped-def]
    if name == "ingest":
        from relay_ingest.main import run
    elif name == "deid":
        from relay_deid.main import run
    elif name == "sender":
        from relay_sender.main import run
    else:
        from relay_api.main import run
    return run


@app.command()
def up(workers: Annotated[int | None, typer.Option(
        min=1, help="De-identification processes; default: one per core. With 1, deid "
                    "runs in this process")] = None) -> None:
    """All four services (migrations applied first); deid in a process per core."""
    _run(["ingest", "deid", "sender", "api"], probes=False, upgrade_first=True,
         workers=workers or _cores())


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@app.command()
def ingest() -> None:
    """Watch the incoming folder and record finished series."""
    _run(["ingest"], probes=True)


deid_app = typer.Typer(help="De-identify series from the deid queue (run as many as needed); "
                       "with a command, try profiles on files instead.",
                       invoke_without_command=True)
deid_app.command("preview")(deid_tools.preview)
deid_app.command("diff")(deid_tools.diff)
app.add_typer(deid_app, name="deid")


@deid_app.callback()
def deid(
    ctx: typer.Context,
    worker_of: Annotated[int | None, typer.Option(hidden=True, help="A worker of `relay up`: "
                                                  "the pid of that process")] = None,
    bus_file: Annotated[Path | None, typer.Option(hidden=True, help="The SQLite bus file of "
                                                  "`relay up`")] = None,
    with_sender: Annotated[bool, typer.Option(hidden=True, help="A worker of `relay up` that "
                                              "sends too")] = False,
) -> None:
    """De-identify series from the deid queue (run as many as needed); `relay deid preview`
    and `relay deid diff` try a profile on files without the service."""
    if ctx.invoked_subcommand is None:
        # A worker of `relay up` has no probe port of its own: `relay up` answers for it.
        _run(["deid", "sender"] if with_sender else ["deid"], probes=worker_of is None,
             bus_file=bus_file, worker_of=worker_of)


@app.command()
def sender() -> None:
    """Deliver de-identified series to the destinations and verify them."""
    _run(["sender"], probes=True)


@app.command()
def api() -> None:
    """The REST API, dashboard, probes and metrics."""
    _run(["api"], probes=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to RELAY_DATABASE_URL."""
    from relay_shared.db import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    typer.echo("database schema is up to date")


@app.command()
def submit(path: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                                 help="A folder holding one series")]) -> None:
    """Copy a series folder into the incoming folder, renamed into place only when complete."""
    settings = _settings()
    assert settings.incoming_dir is not None
    settings.incoming_dir.mkdir(parents=True, exist_ok=True)
    final = settings.incoming_dir / path.resolve().name
    if final.exists():
        final = final.with_name(f"{final.name}-{uuid.uuid4().hex[:6]}")
    partial = final.with_name(f"{final.name}.tmp{uuid.uuid4().hex[:8]}")
    shutil.copytree(path, partial)
    os.rename(partial, final)
    typer.echo(f"submitted {path} as {final}")


@token_app.command("new")
def token_new(
    name: Annotated[str, typer.Option(help="Who holds it (a person or a service); the audit "
                                           "trail names each read and retry by it")],
    role: Annotated[str, typer.Option(help="reader, operator, reviewer or admin")] = "reader",
) -> None:
    """Print a fresh token and the RELAY_API_TOKENS entry (NAME:ROLE:SHA256) that admits it."""
    from relay_api.auth import NAME, Role, hash_token, new_token

    if role.upper() not in Role.__members__:
        typer.echo("relay: --role must be reader, operator, reviewer or admin", err=True)
        raise typer.Exit(2)
    if not NAME.match(name):
        typer.echo("relay: --name is 1-64 letters, digits, '_', '.', '@' or '-'", err=True)
        raise typer.Exit(2)
    token = new_token()
    typer.echo(f"token: {token}")
    typer.echo(f"entry: {name}:{role.lower()}:{hash_token(token)}")


@app.command()
def purge(dry_run: Annotated[bool, typer.Option(help="Only say what would go")] = False) -> None:
    """Apply the retention rules now (they also run on a schedule in ingest)."""
    from relay_shared.db import make_engine, require_current_schema
    from relay_shared.paths import WorkStore
    from relay_shared.retention import purge as run_purge

    settings = _settings()
    engine = make_engine(settings.sqlalchemy_url)
    require_current_schema(engine)
    assert settings.work_dir is not None and settings.quarantine_dir is not None
    report = run_purge(engine, WorkStore(settings.work_dir, settings.quarantine_dir), settings,
                       dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    for line in report.lines():
        typer.echo(f"{verb} {line}")


@app.command()
def healthcheck(url: Annotated[str | None, typer.Option(help="A /healthz URL")] = None) -> None:
    """Exit 0 when the service's /healthz answers 200 (for container health checks)."""
    import httpx

    if url is None:
        settings = _settings()
        url = f"http://127.0.0.1:{settings.api_port}/healthz"
    try:
        ok = httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        ok = False
    raise typer.Exit(0 if ok else 1)


@app.command()
def status(
    url: Annotated[str | None, typer.Option(help="The api's base URL")] = None,
    token: Annotated[str | None, typer.Option(envvar="RELAY_API_TOKEN",
                                              help="A reader token (or RELAY_API_TOKEN)")] = None,
    follow: Annotated[bool | None, typer.Option(
        help="Follow series in flight with a live bar (default: when on a terminal)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Series to list")] = 20,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls")] = 1.0,
    timeout: Annotated[float, typer.Option(min=0, help="Longest follow, in seconds")] = 3600,
) -> None:
    """The relay's state from the API: counts, latest series, failures, a bar while in flight."""
    from rich.console import Console

    from relay_api.client import Api, StatusError, follow_series, render

    if url is None:
        url = f"http://127.0.0.1:{_settings().api_port}"
    if not token:
        typer.echo("relay: a token is needed: --token or RELAY_API_TOKEN", err=True)
        raise typer.Exit(2)
    console = Console()
    api = Api(url, token)
    try:
        snap = api.snapshot(limit)
        if snap.in_flight and (console.is_terminal if follow is None else follow):
            snap = follow_series(console, api, snap, interval, timeout, limit)
        render(console, snap)
    except StatusError as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def collect(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="CSV: accession_number, or patient_id, "
                                              "date_from, date_to")],
    name: Annotated[str | None, typer.Option(help="A label for the worklist")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until every row has settled")] = True,
    timeout: Annotated[float, typer.Option(min=0, help="Longest wait, in seconds")] = 86400,
) -> None:
    """Hand a worklist to the collector (ingest with RELAY_PACS_HOST set) and print its report."""
    from relay_ingest.worklist import WorklistError, parse_worklist

    settings = _settings()
    try:
        queries = parse_worklist(path.read_text(encoding="utf-8-sig"))
    except WorklistError as exc:
        typer.echo(f"relay: {path}: {exc}", err=True)
        raise typer.Exit(2) from None
    collection_id = _record_worklist(settings, name or path.name, queries)
    typer.echo(f"collection {collection_id}: {len(queries)} row(s)")
    if wait:
        _print_collection(settings, collection_id, queries, timeout)


def _record_worklist(settings: Settings, name: str, queries: list) -> int:  # type: ignore[type-arg]
    from relay_ingest.worklist import create_collection
    from relay_shared.db import make_engine, require_current_schema
    from relay_shared.notify import record as notify_record
    from relay_shared.runtime import make_vault

    engine = make_engine(settings.sqlalchemy_url)
    require_current_schema(engine)
    # A worklist whose rows were all collected before is finished at once: tell the hooks.
    notify_record.install(engine, settings.webhooks)
    return create_collection(engine, make_vault(settings), name, queries)


def _print_collection(settings: Settings, collection_id: int, queries: list,  # type: ignore[type-arg]
                      timeout: float) -> None:
    """Poll until settled, then one line per row with the value from the caller's own file."""
    import time

    from sqlmodel import Session

    from relay_api.routes.collections import describe
    from relay_shared.db import make_engine

    engine = make_engine(settings.sqlalchemy_url)
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            described = describe(session, collection_id)
        if described.settled or time.monotonic() > deadline:
            break
        time.sleep(2)
    for row in described.rows:
        query = queries[row.row - 1]
        value = query.accession or f"{query.patient_id} {query.date_from}-{query.date_to}"
        typer.echo(f"{row.row:>5}  {value:<24} {row.state.value:<10} {row.reason or ''}")
    typer.echo(", ".join(f"{state}: {count}" for state, count in
                         sorted(described.rows_by_state.items())))
    if not described.settled:
        raise typer.Exit(1)


@app.command("mock-site")
def mock_site(
    duration: Annotated[float, typer.Option(min=1, help="Seconds to run")] = 300,
    studies_per_hour: Annotated[float, typer.Option(min=0.01)] = 60,
    modalities: Annotated[str, typer.Option(help="Comma list of CT, MR, CR, DX, PT, US")
                          ] = "CT,MR,CR",
    series: Annotated[str, typer.Option(help="Series per study, MIN-MAX")] = "1-3",
    instances: Annotated[str, typer.Option(help="Instances per series, MIN-MAX")] = "5-20",
    size: Annotated[int, typer.Option(min=8, max=1024, help="Rows and columns")] = 64,
    to: Annotated[str, typer.Option(help="dicom (C-STORE) or folder (incoming)")] = "dicom",
    host: Annotated[str | None, typer.Option(help="SCP host (RELAY_SCP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="SCP port (RELAY_SCP_PORT)")] = None,
    ae_title: Annotated[str | None, typer.Option(help="SCP AE (RELAY_SCP_AE_TITLE)")] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same site")] = 0,
) -> None:
    """Synthetic studies on a schedule, pushed to the relay; prints its figures at the end."""
    from relay_ingest import mocksite

    settings = _settings()
    try:
        profile = mocksite.Profile(
            modalities=tuple(m.strip().upper() for m in modalities.split(",") if m.strip()),
            studies_per_hour=studies_per_hour, series_per_study=_span(series),
            instances_per_series=_span(instances), size=size, seed=seed)
        if not profile.modalities or set(profile.modalities) - set(mocksite.SOP_CLASSES):
            raise ValueError("--modalities: a comma list of " + ", ".join(mocksite.SOP_CLASSES))
    except ValueError as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(2) from None
    if to not in ("dicom", "folder") or (to == "dicom" and not (port or settings.scp_port)):
        typer.echo("relay: --to is dicom (with --port or RELAY_SCP_PORT) or folder", err=True)
        raise typer.Exit(2)
    if to == "folder":
        assert settings.incoming_dir is not None
        push = mocksite.push_as_folder(settings.incoming_dir)
    else:
        push = mocksite.push_by_cstore(host or settings.scp_host, port or settings.scp_port,
                                       ae_title or settings.scp_ae_title)
    figures = mocksite.run(profile, push, duration)
    for line in figures.lines(studies_per_hour):
        typer.echo(line)


def _span(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    span = (int(low), int(high or low))
    if span[0] < 1 or span[1] < span[0]:
        raise ValueError(f"{text!r} is not MIN-MAX with 1 <= MIN <= MAX")
    return span


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
