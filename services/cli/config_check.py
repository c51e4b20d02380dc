"""`relay config check`: the settings a service would start with, checked the same way,
before a deployment finds out by crash-looping.

It loads the settings as every service does, runs the start-up checks each service
makes (API tokens, the de-identification recipe, the pixel rules), looks for the tools
the settings need, and flags RELAY_ variables no setting reads (a misspelt name is
otherwise silently ignored). With --connect it also reaches the database, the broker
and Orthanc. It prints the effective settings with every secret masked.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from relay_shared.preflight import Problem
from relay_shared.settings import Settings, SettingsError, load_settings

config_app = typer.Typer(help="The relay's configuration.", no_args_is_help=True)

# Read by the relay outside the settings object: by the CLI, or before the settings load.
NOT_SETTINGS = frozenset({"RELAY_SECRETS_DIR", "RELAY_API_TOKEN"})
# Lists whose entries are `name:secret`: the name is shown, the secret is not.
NAMED_SECRETS = frozenset({"api_tokens", "identifier_keys"})
MASK = "****"
SERVICES = ("ingest", "deid", "sender", "api")
# `db` is the migration job: it needs the settings and the database, no service's pieces.
CHECKABLE = (*SERVICES, "db")


@config_app.command("check")
def check(connect: Annotated[bool, typer.Option(
        help="Also reach the database, the broker and Orthanc")] = False,
          service: Annotated[list[str] | None, typer.Option(
              help="Check what this service needs (ingest, deid, sender, api, or db for "
                   "the migration job); repeat it for several. Default: all four services, "
                   "as on a machine that runs them all")] = None) -> None:
    """Validate the settings as a service would; print them, secrets masked."""
    services = tuple(service) if service else SERVICES
    if unknown := sorted(set(services) - set(CHECKABLE)):
        raise typer.BadParameter(f"no such service: {', '.join(unknown)} (one of "
                                 f"{', '.join(CHECKABLE)})", param_hint="--service")
    found = unknown_variables(os.environ, os.environ.get("RELAY_SECRETS_DIR"))
    try:
        settings = load_settings()
    except SettingsError as exc:
        _report([*found, Problem("settings", str(exc))])
        raise typer.Exit(2) from None
    found += start_up_problems(settings, services)
    if connect:
        found += asyncio.run(connection_problems(settings))
    for name, value in effective(settings):
        typer.echo(f"{name}={value}")
    _report(found)
    if found:
        raise typer.Exit(2)
    typer.echo("configuration ok" + (" (database, broker and Orthanc reached)" if connect
                                     else ""))


def _report(found: list[Problem]) -> None:
    for problem in found:
        typer.echo(f"relay: {problem}", err=True)


def unknown_variables(environ: os._Environ[str] | dict[str, str],
                      secrets_dir: str | None) -> list[Problem]:
    known = {f"RELAY_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    names = {name for name in environ if name.startswith("RELAY_")}
    if secrets_dir and Path(secrets_dir).is_dir():
        names |= {p.name for p in Path(secrets_dir).iterdir()
                  if p.name.startswith("RELAY_") and p.is_file()}
    return [Problem(name, "no such setting (misspelt? see the README's table)")
            for name in sorted(names - known)]


def start_up_problems(settings: Settings, services: tuple[str, ...] = SERVICES
                      ) -> list[Problem]:
    """What the services check as they start, so a mistake shows before they do."""
    from relay_api.auth import TokenConfigError, parse_entries
    from relay_shared.deid import DeidConfig, DeidConfigError
    from relay_shared.pixels.rules import PixelRulesError, load_rules
    from relay_shared.preflight import problems
    from relay_shared.production import RequiredInProduction
    from relay_shared.signing import SigningKeyError, public_key_for

    found = problems(settings, services)
    checks: list[tuple[str, tuple[type[Exception], ...], Callable[[], object]]] = [
        ("RELAY_API_TOKENS", (TokenConfigError,), lambda: parse_entries(settings.api_tokens)),
        ("RELAY_DEID_RECIPE", (DeidConfigError,), lambda: DeidConfig.from_settings(
            settings.deid_options, str(settings.deid_recipe) if settings.deid_recipe else None)),
        ("RELAY_PIXEL_RULES", (PixelRulesError,), lambda: load_rules(settings.pixel_rules)),
        # Its public half: what both the sender (which holds the private key) and the api
        # (which may be given the public key alone) can be checked by.
        ("RELAY_SIGNING_KEY", (SigningKeyError, RequiredInProduction),
         lambda: public_key_for(settings) if {"sender", "api"} & set(services) else None),
    ]
    for variable, error, run in checks:
        caught: tuple[type[Exception], ...] = (*error, OSError)
        try:
            run()
        except caught as exc:
            text = str(exc).removeprefix(f"{variable}: ")
            found.append(Problem(variable, text if isinstance(exc, error)
                                 else f"cannot be read ({type(exc).__name__})"))
    return found


async def connection_problems(settings: Settings) -> list[Problem]:
    import aio_pika
    import httpx

    from relay_shared.db import make_engine, require_current_schema

    found = []
    try:
        engine = make_engine(settings.sqlalchemy_url)
        await asyncio.to_thread(require_current_schema, engine)
        engine.dispose()
    except Exception as exc:  # the kind is what tells unreachable from unmigrated
        found.append(Problem("RELAY_DATABASE_URL", f"not usable ({type(exc).__name__}); "
                                                   "is it reachable and `relay db upgrade` run?"))
    if settings.amqp_url:
        try:
            connection = await asyncio.wait_for(aio_pika.connect(settings.amqp_url), 15)
            await connection.close()
        except Exception as exc:
            found.append(Problem("RELAY_AMQP_URL", f"unreachable ({type(exc).__name__})"))
    if settings.orthanc_url:
        auth = (settings.orthanc_username or "", settings.orthanc_password.get_secret_value()) \
            if settings.orthanc_password else None
        try:
            async with httpx.AsyncClient(timeout=15, auth=auth) as client:
                (await client.get(f"{settings.orthanc_url.rstrip('/')}/system")
                 ).raise_for_status()
        except httpx.HTTPError as exc:
            found.append(Problem("RELAY_ORTHANC_URL", f"no answer from /system "
                                                      f"({type(exc).__name__})"))
    return found


def effective(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as `RELAY_NAME` and its value, secrets masked."""
    shown = []
    for name in sorted(Settings.model_fields):
        shown.append((f"RELAY_{name.upper()}", _masked(name, getattr(settings, name))))
    return shown


def _masked(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, list):
        if name in NAMED_SECRETS:
            return ",".join(f"{str(v).partition(':')[0]}:{MASK}" for v in value)
        text = ",".join(str(getattr(v, "value", v)) for v in value)
    else:
        text = str(getattr(value, "value", value))
    # A URL's password (amqp://user:pass@host) is as secret as any other.
    return re.sub(r"(://[^:/@,]*:)[^@/,]*@", rf"\g<1>{MASK}@", text)
