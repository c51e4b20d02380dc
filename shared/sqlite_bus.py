"""The bus of `relay up` when its deid workers are processes of their own: the queues
in a SQLite file in the data folder, shared by the processes of one machine.

The in-process bus cannot reach another process, and RabbitMQ is what a laptop or a
single server running `relay up` does not have. A SQLite file is: every process
opens it, a claim is one UPDATE (SQLite runs a statement alone), and a message
outlives the process that holds it. The semantics are the other buses': at least
once, one message at a time per consumer, retries with growing delay, a message
given up on parked as dead.

A message is claimed by its consumer's process name while its handler runs. A
process that dies leaves its claims; whoever supervises it (`relay up`) hands them
back with :meth:`SqliteBus.release`, counting the attempt, so a series that kills
its worker every time is given up on like any other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from relay_shared.bus import GiveUp, Handler, RetryPolicy, describe, wait_for_idle
from relay_shared.db import PROCESS_NAME
from relay_shared.messages import SeriesMessage

log = logging.getLogger(__name__)

# How long an idle consumer waits before looking again: the delay a message from
# another process may wait (one published here wakes this process's consumers at once).
POLL_INTERVAL = 0.05
WORKER_STOPPED = ("WorkerStopped: a worker stopped while handling this series (it crashed, "
                  "was killed or ran out of memory)")

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    available_at REAL NOT NULL,
    claimed_by TEXT
);
CREATE INDEX IF NOT EXISTS message_waiting ON message (queue, claimed_by, available_at);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL
);
"""

T = TypeVar("T")


class SqliteBus:
    def __init__(self, path: Path, retry: RetryPolicy, owner: str = PROCESS_NAME) -> None:
        self._path = path
        self._retry = retry
        self._owner = owner
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._accepting = True
        self._busy = 0

    @property
    def path(self) -> Path:
        return self._path

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._connection is None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                # Autocommit: every statement is its own transaction, and a claim is one.
                connection = sqlite3.connect(self._path, timeout=30, isolation_level=None,
                                             check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                self._connection = connection
            return work(self._connection)

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._run, work)

    async def connect(self) -> None:
        await self._call(lambda c: c.executescript(SCHEMA))

    async def publish(self, queue: str, message: SeriesMessage) -> None:
        await self._call(lambda c: c.execute(
            "INSERT INTO message (queue, body, available_at) VALUES (?, ?, ?)",
            (queue, message.to_bytes(), time.time())))
        wake = self._wake.get(queue)
        if wake is not None:
            wake.set()

    async def consume(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        self._wake.setdefault(queue, asyncio.Event())
        log.info("consuming", extra={"queue": queue, "consumer": self._owner})
        self._tasks.append(asyncio.create_task(self._consume(queue, handler, on_give_up)))

    def _claim(self, connection: sqlite3.Connection, queue: str) -> tuple[Any, ...] | None:
        now = time.time()
        waiting = "FROM message WHERE queue = ? AND claimed_by IS NULL AND available_at <= ?"
        # A read first: idle consumers looking again and again take no write lock.
        if connection.execute(f"SELECT 1 {waiting} LIMIT 1", (queue, now)).fetchone() is None:
            return None
        row: tuple[Any, ...] | None = connection.execute(
            f"UPDATE message SET claimed_by = ? WHERE id = (SELECT id {waiting} "
            "ORDER BY available_at, id LIMIT 1) RETURNING id, body, attempt",
            (self._owner, queue, now)).fetchone()
        return row

    async def _consume(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        wake = self._wake[queue]
        while self._accepting:
            try:
                claimed = await self._call(lambda c: self._claim(c, queue))
            except sqlite3.Error:
                log.warning("the bus file could not be read; trying again", exc_info=True)
                claimed = None
            if claimed is None or not self._accepting:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), POLL_INTERVAL)
                continue
            row_id, body, attempt = claimed
            self._busy += 1
            try:
                await self._deliver(queue, row_id, SeriesMessage.from_bytes(body), attempt,
                                    handler, on_give_up)
            finally:
                self._busy -= 1

    async def _deliver(self, queue: str, row_id: int, message: SeriesMessage, attempt: int,
                       handler: Handler, on_give_up: GiveUp) -> None:
        if attempt > self._retry.max_attempts:  # its workers died on it every time
            await self._give_up(queue, row_id, message, WORKER_STOPPED, on_give_up)
            return
        try:
            await handler(message, attempt)
        except Exception as exc:  # the policy below decides, for every failure alike
            if attempt >= self._retry.max_attempts:
                await self._give_up(queue, row_id, message, describe(exc), on_give_up)
                return
            delay = self._retry.delay(attempt)
            log.warning("retrying", extra={"series_id": message.series_id, "attempt": attempt,
                                           "delay_s": delay, "error_type": type(exc).__name__})
            await self._call(lambda c: c.execute(
                "UPDATE message SET attempt = attempt + 1, available_at = ?, claimed_by = NULL "
                "WHERE id = ?", (time.time() + delay, row_id)))
            return
        await self._call(lambda c: c.execute("DELETE FROM message WHERE id = ?", (row_id,)))

    async def _give_up(self, queue: str, row_id: int, message: SeriesMessage, error: str,
                       on_give_up: GiveUp) -> None:
        try:
            await on_give_up(message, error)
        except Exception:  # the database is down: give up again a little later
            log.warning("could not record the failure", exc_info=True)
            await self._call(lambda c: c.execute(
                "UPDATE message SET available_at = ?, claimed_by = NULL WHERE id = ?",
                (time.time() + self._retry.base_delay, row_id)))
            return

        def park(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO dead (queue, body, error, at) VALUES (?, ?, ?, ?)",
                               (queue, message.to_bytes(), error[:2000], time.time()))
            connection.execute("DELETE FROM message WHERE id = ?", (row_id,))
            connection.execute("COMMIT")
        await self._call(park)

    def release(self, owner: str | None = None) -> int:
        """Hand back the messages ``owner`` (every owner: None) had claimed, its attempt
        counted: that process is gone without settling them."""
        def hand_back(connection: sqlite3.Connection) -> int:
            where, args = ("claimed_by = ?", (owner,)) if owner else ("claimed_by IS NOT NULL", ())
            return connection.execute(
                f"UPDATE message SET claimed_by = NULL, attempt = attempt + 1 WHERE {where}",
                args).rowcount
        return self._run(hand_back)

    def recover(self) -> int:
        """Before any process of this bus runs: every claim is a dead process's."""
        self._run(lambda c: c.executescript(SCHEMA))
        return self.release()

    def dead(self, queue: str) -> list[tuple[SeriesMessage, str]]:
        rows = self._run(lambda c: c.execute(
            "SELECT body, error FROM dead WHERE queue = ? ORDER BY id", (queue,)).fetchall())
        return [(SeriesMessage.from_bytes(body), error) for body, error in rows]

    async def stop_consuming(self) -> None:
        self._accepting = False

    async def wait_idle(self, timeout: float) -> bool:
        return await wait_for_idle(lambda: self._busy, timeout)

    async def queue_depths(self) -> dict[str, int]:
        rows = await self._call(lambda c: c.execute(
            "SELECT queue, count(*) FROM message WHERE claimed_by IS NULL GROUP BY queue"
        ).fetchall())
        return {queue: int(count) for queue, count in rows}

    async def is_healthy(self) -> bool:
        try:
            await self._call(lambda c: c.execute("SELECT 1").fetchone())
        except sqlite3.Error:
            return False
        return True

    async def close(self) -> None:
        self._accepting = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # A message still in hand goes back to its queue, as RabbitMQ does on a close;
        # the handler ran out of time, which is not the series' fault.
        self._run(lambda c: c.execute("UPDATE message SET claimed_by = NULL WHERE claimed_by = ?",
                                      (self._owner,)))
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
