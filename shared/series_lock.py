"""One worker at a time on a series, across processes.

A series' message can be in two workers' hands at once: RabbitMQ hands a message
that is still being worked on to another consumer when the first one's channel
closes (a network blip, or its consumer timeout on a long series), and the sweep
requeues a series that has sat in a working state for long. Two deid workers would
then both queue the series for sending, and two senders would both send it. A
PostgreSQL advisory lock keyed by the series makes the second worker wait until the
first is done; it then finds the work done and skips it. The lock belongs to the
holder's database session, so a worker that dies lets go of it at once.

Across a failover of the database the lock must be re-taken safely. Advisory locks
live in the primary's memory and are not replicated: when the primary goes, every
lock goes with it, and a worker may take a series' lock on the promoted standby
while the first worker, unaware, is still on the series. So the holder's units of
work (``session_scope`` inside the block) commit through the very connection that
holds the lock: a commit succeeds only on the server where the lock is held, by the
session that holds it. The first worker's next commit fails (its server is gone),
its attempt fails and is retried, and the retry waits for the lock on the new
primary like anyone else. What the first worker did outside the database in the
meantime (files written, instances sent) is repeated at most once, and every stage
is idempotent about it. docs/high-availability.md tells the whole argument.

On SQLite the relay runs on one machine (`relay up`), its deid workers possibly
processes of their own: there the lock is an exclusive ``flock`` on a file beside
the database, one of a fixed set of slots chosen by the series id (two series
sharing a slot only wait for each other). It too belongs to the holder's open
file, so a process that dies lets go of it at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from relay_shared.db import pinned

# The first key of the relay's advisory locks ("RELY"), so that another program's
# advisory locks in the same database never collide with a series id.
NAMESPACE = 0x52454C59
# Ingest's key for a series it records, by its UID (the series may have no row yet).
RECORDING_NAMESPACE = 0x52454C5A
# A process's hold on something of its own on the shared volume, by name: a staging
# area, a claimed delivery. Released when it ends, however it ends.
HOLDING_NAMESPACE = 0x52454C5B
# Lock files of a SQLite database; a few kilobytes of empty files, made as needed.
FILE_SLOTS = 1024

log = logging.getLogger(__name__)


def _shared(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def exclusive(engine: Engine, series_id: int) -> Iterator[None]:
    """Hold the series' lock for the block, waiting for whoever holds it now."""
    if not _shared(engine):
        with _file_lock(engine, series_id):
            yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:namespace, :series_id)"),
                           {"namespace": NAMESPACE, "series_id": series_id})
        connection.commit()  # the lock outlives transactions; don't idle in one
        try:
            with pinned(engine, connection):
                yield
        finally:
            _release(connection, series_id)


@contextmanager
def _file_lock(engine: Engine, series_id: int) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # a database of this process alone
        return
    folder = Path(f"{database}.locks")
    folder.mkdir(exist_ok=True)
    # Opened anew each time: a flock belongs to its open file, so two threads of one
    # process exclude each other as two processes do.
    descriptor = os.open(folder / f"{series_id % FILE_SLOTS}", os.O_RDWR | os.O_CREAT, 0o660)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # which lets go of the lock


def recording(session: Session, series_uid: str) -> None:
    """Until the session's transaction ends, no other process records this series:
    two ingest processes given parts of one series at once would each create it, or
    each find the other's part missing. (SQLite: one process, writes in turn.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:uid))"),
                        {"namespace": RECORDING_NAMESPACE, "uid": series_uid})


@contextmanager
def holding(engine: Engine, name: str, wait: bool = True) -> Iterator[bool]:
    """Hold ``name`` for the block; without ``wait``, yield False at once when another
    process holds it. Other processes of the relay share the data volume only with a
    PostgreSQL database; on SQLite this process is the only one."""
    if not _shared(engine):
        yield True
        return
    function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    with engine.connect() as connection:
        answer = connection.execute(text(f"SELECT {function}(:namespace, hashtext(:name))"),
                                    {"namespace": HOLDING_NAMESPACE, "name": name}).scalar()
        connection.commit()
        got = wait or bool(answer)  # pg_advisory_lock answers nothing: it waited
        try:
            yield got
        finally:
            if got:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:namespace, "
                                            "hashtext(:name))"),
                                       {"namespace": HOLDING_NAMESPACE, "name": name})
                    connection.commit()
                except Exception:  # the session ended, and its lock with it
                    connection.invalidate()


def held_by_someone(engine: Engine, name: str) -> bool:
    """Whether a live process holds ``name`` (see holding)."""
    with holding(engine, name, wait=False) as got:
        return not got


def _release(connection: Connection, series_id: int) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:namespace, :series_id)"),
                           {"namespace": NAMESPACE, "series_id": series_id})
        connection.commit()
    except Exception:
        # The connection broke, which ended the session and its lock; a pooled
        # connection that might still hold it must never be handed out again.
        log.warning("could not release the lock of series %s; its connection is dropped",
                    series_id, exc_info=True)
        connection.invalidate()


def held(engine: Engine) -> set[int]:
    """The series some worker holds the lock of now."""
    if not _shared(engine):
        return set()
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = :namespace AND objsubid = 2"), {"namespace": NAMESPACE})
        return {int(row[0]) for row in rows}
