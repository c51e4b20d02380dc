"""Engine, sessions and the schema-version gate."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlmodel import Session, create_engine

from relay_shared.models import Event

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaOutOfDate(Exception):
    pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Pre-ping: after a failover every pooled connection is to the old primary;
    # each is found dead when next taken and replaced by one to the new primary.
    return create_engine(postgres_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5)


# libpq's defaults wait for TCP to give up on a primary that vanished without a word
# (minutes); these notice in well under a minute. A value in the URL wins.
LIBPQ_DEFAULTS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "30",
                  "keepalives_interval": "10", "keepalives_count": "3",
                  "tcp_user_timeout": "30000"}
_LIBPQ_HOSTS = re.compile(r"^(?P<scheme>[^:/]+://)(?P<user>[^@/]*@)?(?P<hosts>[^/?]*,[^/?]*)"
                          r"(?P<rest>.*)$")


def postgres_url(url: str) -> URL:
    """A PostgreSQL URL that may name a primary and its standbys, as libpq does
    (``postgresql+psycopg://u:p@db-a:5432,db-b:5432/relay``) or as SQLAlchemy does
    (``...@/relay?host=db-a:5432&host=db-b:5432``). With several hosts the relay
    connects only to the one that accepts writes, trying them in turn."""
    multi = _LIBPQ_HOSTS.match(url)
    if multi:
        rest = multi["rest"] or "/"
        hosts = "&".join(f"host={host.strip()}" for host in multi["hosts"].split(","))
        joiner = "&" if "?" in rest else "?"
        url = f"{multi['scheme']}{multi['user'] or ''}{rest}{joiner}{hosts}"
    parsed = make_url(url)
    query = {**LIBPQ_DEFAULTS, **parsed.query}
    if isinstance(parsed.query.get("host"), tuple):
        query.setdefault("target_session_attrs", "read-write")
    return parsed.set(query=query)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the api read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# The connection that holds the lock of the series this thread works on (see
# series_lock): its units of work commit through it, so they commit only while it
# holds the lock.
_pinned: ContextVar[tuple[Engine, Connection] | None] = ContextVar("pinned", default=None)


@contextmanager
def pinned(engine: Engine, connection: Connection) -> Iterator[None]:
    token = _pinned.set((engine, connection))
    try:
        yield
    finally:
        _pinned.reset(token)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: the caller's block commits at its end, or nothing does."""
    pin = _pinned.get()
    bind: Engine | Connection = pin[1] if pin is not None and pin[0] is engine else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url.startswith("postgresql"):
        url = postgres_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    command.upgrade(_alembic_config(url), "head")


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at {current or 'nothing'}, this release needs {head}: "
            "run `relay db upgrade` first"
        )


PROCESS_NAME = f"{socket.gethostname()}:{os.getpid()}"


def record_event(
    session: Session, series_id: int | None, service: str, kind: str, detail: str | None = None
) -> None:
    session.add(Event(series_id=series_id, service=service, process=PROCESS_NAME, kind=kind,
                      detail=detail))
