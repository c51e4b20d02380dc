"""The bus on RabbitMQ (aio-pika).

Topology per work queue Q: Q itself, Q.retry where a failed message waits out
its delay (per-message TTL, then dead-lettered back to Q), and Q.dead where a
message rests after its last attempt. Queues are durable, messages persistent,
publishes confirmed; a consumer takes one message at a time and acks only after
its handler (which commits to the database) has returned. A message the broker
delivers again (its worker stopped without settling it) counts as a failed
attempt and goes by Q.retry, so the number of attempts bounds crash loops too.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from relay_shared.bus import GiveUp, Handler, RetryPolicy, describe
from relay_shared.messages import SeriesMessage
from relay_shared.reasons import RelayError

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-relay-attempt"
ERROR_HEADER = "x-relay-error"


class WorkerStopped(RelayError):
    def __init__(self) -> None:
        super().__init__("a worker stopped while handling this series (it crashed, was "
                         "killed or ran out of memory, or shut down before finishing)")


class AmqpBus:
    def __init__(self, url: str, retry: RetryPolicy, prefetch: int = 1) -> None:
        self._url = url
        self._retry = retry
        self._prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._declared: set[str] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def connect(self, max_wait: float = 30.0) -> None:
        """Connect, waiting with backoff while the broker is down (it may start after us)."""
        delay = 0.5
        while True:
            try:
                self._connection = await aio_pika.connect_robust(self._url, reconnect_interval=2)
                break
            except (ConnectionError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning("broker unreachable, retrying",
                            extra={"delay_s": delay, "error_type": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_wait)
        self._publish_channel = await self._connection.channel(publisher_confirms=True)

    def _channel(self) -> AbstractChannel:
        if self._publish_channel is None:
            raise RuntimeError("AmqpBus.connect() was not awaited")
        return self._publish_channel

    async def declare(self, queue: str) -> None:
        if queue in self._declared:
            return
        channel = self._channel()
        await channel.declare_queue(queue, durable=True)
        await channel.declare_queue(f"{queue}.retry", durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue})
        await channel.declare_queue(f"{queue}.dead", durable=True)
        self._declared.add(queue)

    async def publish(self, queue: str, message: SeriesMessage) -> None:
        await self.declare(queue)
        await self._send(queue, message, attempt=1)

    async def _send(self, routing_key: str, message: SeriesMessage, attempt: int,
                    expiration: float | None = None, error: str | None = None) -> None:
        headers: dict[str, object] = {ATTEMPT_HEADER: attempt}
        if error:
            headers[ERROR_HEADER] = error
        body = aio_pika.Message(
            message.to_bytes(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json", headers=headers,  # type: ignore[arg-type]
            expiration=expiration, correlation_id=message.trace_id,
        )
        await self._channel().default_exchange.publish(body, routing_key=routing_key)

    async def consume(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        await self.declare(queue)
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        source = await channel.declare_queue(queue, durable=True)

        async def deliver(incoming: AbstractIncomingMessage) -> None:
            self._in_flight += 1
            self._idle.clear()
            try:
                await self._deliver(queue, incoming, handler, on_give_up)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

        tag = await source.consume(deliver)
        self._consumers.append((source, tag))

    async def _deliver(self, queue: str, incoming: AbstractIncomingMessage, handler: Handler,
                       on_give_up: GiveUp) -> None:
        try:
            message = SeriesMessage.from_bytes(incoming.body)
        except ValueError as exc:
            # A message nobody can read would loop forever: park it where people look.
            log.error("unreadable message parked", extra={"queue": queue})
            await self._channel().default_exchange.publish(
                aio_pika.Message(incoming.body, headers={ERROR_HEADER: describe(exc)},
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=f"{queue}.dead")
            await incoming.ack()
            return
        attempt = int((incoming.headers or {}).get(ATTEMPT_HEADER, 1))  # type: ignore[arg-type]
        failure: Exception | None = None
        if incoming.redelivered:
            # A worker took this message and stopped before settling it. Counted as a
            # failed attempt, so a message that brings down every worker that takes it
            # (out of memory, a crashing codec) ends dead instead of going round forever.
            failure = WorkerStopped()
            log.warning("message redelivered: its last worker stopped while handling it",
                        extra={"series_id": message.series_id, "attempt": attempt})
        else:
            try:
                await handler(message, attempt)
            except Exception as exc:  # every failure goes through the same retry policy
                failure = exc
        if failure is not None:
            try:
                await self._after_failure(queue, message, attempt, failure, on_give_up)
            except Exception:  # the broker or database is down: keep the message
                log.warning("could not schedule the retry; message returned to the queue",
                            exc_info=True)
                await asyncio.sleep(self._retry.base_delay)
                await incoming.nack(requeue=True)
                return
        await incoming.ack()

    async def _after_failure(self, queue: str, message: SeriesMessage, attempt: int,
                             exc: Exception, on_give_up: GiveUp) -> None:
        error = describe(exc)
        if attempt >= self._retry.max_attempts:
            await self._send(f"{queue}.dead", message, attempt, error=error)
            await on_give_up(message, error)
            return
        delay = self._retry.delay(attempt)
        log.warning("retrying", extra={"series_id": message.series_id, "attempt": attempt,
                                       "delay_s": delay, "error_type": type(exc).__name__})
        await self._send(f"{queue}.retry", message, attempt + 1, expiration=delay, error=error)

    async def stop_consuming(self) -> None:
        for source, tag in self._consumers:
            try:
                await source.cancel(tag)
            except Exception:  # the channel may already be gone; nothing more to stop
                log.debug("cancel failed", exc_info=True)
        self._consumers.clear()

    async def wait_idle(self, timeout: float) -> bool:
        if self._idle.is_set():  # wait_for(..., 0) would time out even when idle
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def queue_depths(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        assert self._connection is not None
        # A robust channel answers a repeated declare from its cache; ask afresh.
        async with self._connection.channel() as channel:
            for queue in sorted(self._declared):
                for name in (queue, f"{queue}.retry", f"{queue}.dead"):
                    underlay = await channel.get_underlay_channel()
                    result = await underlay.queue_declare(name, passive=True)
                    depths[name] = result.message_count or 0
        return depths

    async def is_healthy(self) -> bool:
        # A robust connection is not "closed" while it reconnects; `connected` tells.
        return self._connection is not None and self._connection.connected.is_set()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
