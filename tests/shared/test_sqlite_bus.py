"""The SQLite bus of `relay up`: consumers of separate processes (here, separate
connections with their own names, as each process has) share one queue file; every
message is handled once, failures are retried then given up, and a dead consumer's
claim is handed back."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine

from relay_shared import series_lock
from relay_shared.bus import RetryPolicy
from relay_shared.messages import SeriesMessage
from relay_shared.reasons import RelayError
from relay_shared.sqlite_bus import SqliteBus

QUEUE = "relay.deid"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.05)


class DestinationDown(RelayError):
    """A failure whose reason the relay wrote."""


async def never(message: SeriesMessage, error: str) -> None:
    raise AssertionError("nothing should be given up")


async def test_two_consumers_share_the_queue_and_handle_each_message_once(
        tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    buses = [SqliteBus(path, POLICY, owner=f"host:{n}") for n in range(2)]
    handled: list[tuple[str, int]] = []
    done = asyncio.Event()

    def handler_of(owner: str):  # type: ignore[no-untyped-def]
        async def handle(message: SeriesMessage, attempt: int) -> None:
            await asyncio.sleep(0.01)  # work: the other consumer takes the next one
            handled.append((owner, message.series_id))
            if len(handled) >= 40:
                done.set()
        return handle

    for n, bus in enumerate(buses):
        await bus.connect()
        await bus.consume(QUEUE, handler_of(f"host:{n}"), never)
    for series_id in range(40):
        await buses[series_id % 2].publish(QUEUE, SeriesMessage(series_id=series_id))
    await asyncio.wait_for(done.wait(), 30)
    await asyncio.sleep(0.2)  # a second handling of any message would show now
    for bus in buses:
        await bus.close()
    assert sorted(Counter(series_id for _, series_id in handled).items()) == \
        [(n, 1) for n in range(40)]
    assert {owner for owner, _ in handled} == {"host:0", "host:1"}


async def test_failures_are_retried_with_delay_then_given_up_and_parked(
        tmp_path: Path) -> None:
    bus = SqliteBus(tmp_path / "bus.db", POLICY)
    await bus.connect()
    attempts: list[tuple[int, float]] = []
    given_up: list[str] = []
    done = asyncio.Event()

    async def handler(message: SeriesMessage, attempt: int) -> None:
        attempts.append((attempt, time.monotonic()))
        raise DestinationDown("destination down")

    async def give_up(message: SeriesMessage, error: str) -> None:
        given_up.append(error)
        done.set()

    await bus.consume(QUEUE, handler, give_up)
    await bus.publish(QUEUE, SeriesMessage(series_id=7))
    await asyncio.wait_for(done.wait(), 10)
    for _ in range(100):  # parked right after the give-up is recorded
        if bus.dead(QUEUE):
            break
        await asyncio.sleep(0.05)
    await bus.close()
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert attempts[2][1] - attempts[1][1] >= POLICY.delay(2) * 0.9  # the delay was kept
    assert given_up == ["DestinationDown: destination down"]
    assert [(m.series_id, e) for m, e in bus.dead(QUEUE)] == [(7, given_up[0])]
    assert await bus.queue_depths() == {}


async def test_the_claims_of_a_dead_process_come_back_counted(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    dead = SqliteBus(path, POLICY, owner="host:111")
    await dead.connect()
    await dead.publish(QUEUE, SeriesMessage(series_id=1))
    await dead.publish(QUEUE, SeriesMessage(series_id=2))
    # host:111 claimed both and died with them: nobody else may take them meanwhile.
    assert dead._run(lambda c: dead._claim(c, QUEUE)) is not None
    assert dead._run(lambda c: dead._claim(c, QUEUE)) is not None
    assert await dead.queue_depths() == {}
    supervisor = SqliteBus(path, RetryPolicy(max_attempts=2, base_delay=0.05), owner="up")
    assert supervisor.release("host:111") == 2
    # Once more for series 1 (the first waiting): its workers died on it twice, past
    # max_attempts.
    assert supervisor._run(lambda c: supervisor._claim(c, QUEUE))[2] == 2  # type: ignore[index]
    supervisor.release("up")
    seen: list[tuple[int, int]] = []
    given_up: list[tuple[int, str]] = []
    done = asyncio.Event()

    async def handler(message: SeriesMessage, attempt: int) -> None:
        seen.append((message.series_id, attempt))
        if given_up:
            done.set()

    async def give_up(message: SeriesMessage, error: str) -> None:
        given_up.append((message.series_id, error))
        if seen:
            done.set()

    await supervisor.consume(QUEUE, handler, give_up)
    await asyncio.wait_for(done.wait(), 10)
    await supervisor.close()
    assert seen == [(2, 2)]
    assert len(given_up) == 1 and given_up[0][0] == 1 and "worker stopped" in given_up[0][1]


async def test_closing_hands_back_the_message_in_hand_uncounted(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = SqliteBus(path, POLICY, owner="host:1")
    await bus.connect()
    started = asyncio.Event()

    async def slow(message: SeriesMessage, attempt: int) -> None:
        started.set()
        await asyncio.sleep(30)

    await bus.consume(QUEUE, slow, never)
    await bus.publish(QUEUE, SeriesMessage(series_id=5))
    await asyncio.wait_for(started.wait(), 10)
    await bus.close()
    after = SqliteBus(path, POLICY, owner="host:2")
    claimed = after._run(lambda c: after._claim(c, QUEUE))
    assert claimed is not None and claimed[2] == 1


def test_the_series_lock_on_sqlite_holds_across_processes(tmp_path: Path) -> None:
    """A deid worker of `relay up` holding a series makes another process wait for it."""
    database = tmp_path / "relay.db"
    engine = create_engine(f"sqlite:///{database}")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from sqlalchemy import create_engine
        from relay_shared import series_lock
        with series_lock.exclusive(create_engine("sqlite:///{database}"), 42):
            print("held", flush=True)
            time.sleep(1.5)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        slot = Path(f"{database}.locks") / str(42 % series_lock.FILE_SLOTS)
        descriptor = os.open(slot, os.O_RDWR)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                taken_while_held = True
            except BlockingIOError:
                taken_while_held = False
        finally:
            os.close(descriptor)
        started = time.monotonic()
        with series_lock.exclusive(engine, 42):
            waited = time.monotonic() - started
    finally:
        holder.wait(10)
    assert not taken_while_held
    assert waited > 0.3  # it waited for the other process to let go
    with series_lock.exclusive(engine, 43):  # another series is not held up
        pass
