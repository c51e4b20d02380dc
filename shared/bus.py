"""The bus behind one small interface, and the in-process implementation.

Delivery is at least once: a handler may see a message again and must do its
work once. A handler that raises is retried with growing delay; after the last
attempt the message is given up on (``on_give_up``) and parked as dead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from relay_shared.messages import SeriesMessage
from relay_shared.reasons import RelayError, keep_text, reason_of

log = logging.getLogger(__name__)

Handler = Callable[[SeriesMessage, int], Awaitable[None]]
GiveUp = Callable[[SeriesMessage, str], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0

    def delay(self, attempt: int) -> float:
        return min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)


class Bus(Protocol):
    async def connect(self) -> None: ...

    async def publish(self, queue: str, message: SeriesMessage) -> None: ...

    async def consume(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        """Start delivering messages of ``queue`` to ``handler``, one at a time."""

    async def stop_consuming(self) -> None:
        """Take no new messages; the ones in progress finish."""

    async def wait_idle(self, timeout: float) -> bool:
        """Wait for the messages in progress to finish; False if the time ran out."""

    async def queue_depths(self) -> dict[str, int]: ...

    async def is_healthy(self) -> bool: ...

    async def close(self) -> None: ...


async def wait_for_idle(busy: Callable[[], int], timeout: float) -> bool:
    """Wait until no message is in hand (``busy`` counts them); False if time ran out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while busy() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return busy() == 0


def describe(exc: BaseException) -> str:
    """The error as the series, the dead-letter header and the API show it: the relay's
    own reason, or only the exception's type (its text may quote the file)."""
    keep_text(exc, "handler failed")
    if isinstance(exc, RelayError):
        return f"{type(exc).__name__}: {exc.reason}"[:2000]
    return reason_of(exc)


class InProcessBus:
    """For `relay up` with no broker: same semantics, nothing survives the process."""

    def __init__(self, retry: RetryPolicy) -> None:
        self._retry = retry
        self._queues: dict[str, asyncio.Queue[tuple[SeriesMessage, int]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = True
        self._busy = 0
        self.dead: dict[str, list[SeriesMessage]] = {}

    def _queue(self, name: str) -> asyncio.Queue[tuple[SeriesMessage, int]]:
        return self._queues.setdefault(name, asyncio.Queue())

    async def connect(self) -> None:
        return None

    async def publish(self, queue: str, message: SeriesMessage) -> None:
        await self._queue(queue).put((message, 1))

    async def consume(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        self._tasks.append(asyncio.create_task(self._run(queue, handler, on_give_up)))

    async def _run(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        source = self._queue(queue)
        while self._accepting:
            message, attempt = await source.get()
            self._busy += 1
            try:
                await handler(message, attempt)
            except Exception as exc:  # the policy below decides, for every failure alike
                await self._after_failure(queue, message, attempt, exc, on_give_up)
            finally:
                self._busy -= 1

    async def _after_failure(
        self, queue: str, message: SeriesMessage, attempt: int, exc: Exception,
        on_give_up: GiveUp,
    ) -> None:
        if attempt >= self._retry.max_attempts:
            try:
                await on_give_up(message, describe(exc))
            except Exception:  # the database is down: try giving up again later
                log.warning("could not record the failure", exc_info=True)
                asyncio.get_running_loop().call_later(
                    self._retry.base_delay, self._queue(queue).put_nowait, (message, attempt))
                return
            self.dead.setdefault(queue, []).append(message)
            return
        delay = self._retry.delay(attempt)
        log.warning("retrying", extra={"series_id": message.series_id, "attempt": attempt,
                                       "delay_s": delay, "error_type": type(exc).__name__})
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._queue(queue).put_nowait, (message, attempt + 1))

    async def stop_consuming(self) -> None:
        self._accepting = False

    async def wait_idle(self, timeout: float) -> bool:
        return await wait_for_idle(lambda: self._busy, timeout)

    async def queue_depths(self) -> dict[str, int]:
        return {name: q.qsize() for name, q in self._queues.items()}

    async def is_healthy(self) -> bool:
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
