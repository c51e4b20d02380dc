"""The bus on RabbitMQ (aio-pika), built to survive the loss of a broker node.

Topology per work queue Q, all quorum queues (replicated over the cluster's nodes):
Q itself; one retry queue per delay tier, ``Q.retry.<ms>ms``, whose queue-level TTL
dead-letters a message back to Q when its delay is up; and Q.dead where a message
rests after its last attempt. One queue per tier because RabbitMQ expires a message
only at the head of its queue: with per-message TTLs in one retry queue, a 256 s
retry would hold back every 2 s retry behind it. In a tier every message has the
same delay, so the head is always the first due.

Messages are persistent and publishes confirmed; a consumer takes one message at a
time and acks only after its handler (which commits to the database) has returned.
A message the broker delivers again (its worker stopped without settling it) counts
as a failed attempt and goes by a retry tier, so the number of attempts bounds crash
loops. The broker's own ``x-delivery-limit`` on Q is the backstop for a message the
relay cannot even settle: past it the broker dead-letters the message to Q.dead.

Queue arguments are fixed forever (RabbitMQ refuses to redeclare a queue with other
arguments): an operator tunes the delivery limit by policy, and a change of retry
delay makes new tiers (the names carry the delay) while the old ones drain.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from pamqp.common import FieldTable

from relay_shared.amqp_link import BrokerLink, split_urls
from relay_shared.bus import GiveUp, Handler, RetryPolicy, describe
from relay_shared.db import PROCESS_NAME
from relay_shared.messages import SeriesMessage
from relay_shared.reasons import RelayError

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-relay-attempt"
ERROR_HEADER = "x-relay-error"
DELIVERY_LIMIT = 10
PUBLISH_TIMEOUT = 30.0
# Dead-lettering that survives a node: the message leaves its queue only once the
# target has confirmed it (RabbitMQ >= 3.10; it needs reject-publish overflow).
_SAFE_DEAD_LETTERS: FieldTable = {"x-dead-letter-strategy": "at-least-once",
                                  "x-overflow": "reject-publish"}


class WorkerStopped(RelayError):
    def __init__(self) -> None:
        super().__init__("a worker stopped while handling this series (it crashed, was "
                         "killed or ran out of memory, or shut down before finishing)")


class QueueTypeMismatch(Exception):
    """A queue of this name exists with other arguments (a classic queue of an older
    release): RabbitMQ cannot change a queue's type in place."""

    def __init__(self, queue: str) -> None:
        super().__init__(
            f"queue {queue} exists with arguments this release does not use (a classic queue "
            "of an older release?): drain it, delete it and start again, see "
            "docs/deployment.md, 'Moving to quorum queues'")


@dataclass(frozen=True)
class Topology:
    work: str
    dead: str
    retry: dict[int, str]  # delay in ms -> queue

    @classmethod
    def of(cls, queue: str, policy: RetryPolicy) -> Topology:
        delays = {round(policy.delay(a) * 1000) for a in range(1, policy.max_attempts)}
        return cls(queue, f"{queue}.dead", {ms: f"{queue}.retry.{ms}ms" for ms in delays})

    def declarations(self) -> list[tuple[str, FieldTable]]:
        quorum: FieldTable = {"x-queue-type": "quorum"}
        work: FieldTable = {**quorum, **_SAFE_DEAD_LETTERS, "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.dead}
        found = [(self.work, work), (self.dead, quorum)]
        for ms, name in sorted(self.retry.items()):
            found.append((name, {**quorum, **_SAFE_DEAD_LETTERS, "x-message-ttl": ms,
                                 "x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": self.work}))
        return found

    def retry_queue(self, delay: float) -> str:
        return self.retry[round(delay * 1000)]


@dataclass
class _Subscription:
    queue: str
    handler: Handler
    on_give_up: GiveUp
    consumer: tuple[AbstractQueue, str] | None = None
    channel: AbstractChannel | None = None


class AmqpBus:
    def __init__(self, url: str, retry: RetryPolicy, prefetch: int = 1) -> None:
        self._urls = split_urls(url)
        self._retry = retry
        self._prefetch = prefetch
        self._link = BrokerLink(self._urls, self._on_connected, f"relay {PROCESS_NAME}")
        self._publish_channel: AbstractChannel | None = None
        self._subscriptions: list[_Subscription] = []
        self._declared: dict[str, Topology] = {}
        self._accepting = True
        self._restarts: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def node(self) -> str | None:
        return self._link.node

    async def connect(self) -> None:
        """Returns once a node is connected; waits, with backoff, while none answers."""
        await self._link.open()

    async def _on_connected(self, connection: AbstractConnection) -> None:
        """Called on each (re)connection: a fresh publish channel, consumers again."""
        self._publish_channel = await connection.channel(publisher_confirms=True,
                                                         on_return_raises=True)
        for subscription in self._subscriptions:
            subscription.channel = None  # gone with the old connection
        for topology in list(self._declared.values()):
            await self._declare_on(connection, topology)
        if self._accepting:
            for subscription in self._subscriptions:
                await self._start(connection, subscription)

    async def _connection(self) -> AbstractConnection:
        return await self._link.wait_connected(PUBLISH_TIMEOUT)

    async def declare(self, queue: str) -> Topology:
        if queue not in self._declared:
            topology = Topology.of(queue, self._retry)
            await self._declare_on(await self._connection(), topology)
            self._declared[queue] = topology
        return self._declared[queue]

    async def _declare_on(self, connection: AbstractConnection, topology: Topology) -> None:
        # A refused declaration closes its channel: one of its own, not the publisher's.
        async with connection.channel() as channel:
            for name, arguments in topology.declarations():
                try:
                    await channel.declare_queue(name, durable=True, arguments=arguments)
                except aio_pika.exceptions.ChannelPreconditionFailed:
                    raise QueueTypeMismatch(name) from None

    async def publish(self, queue: str, message: SeriesMessage) -> None:
        topology = await self.declare(queue)
        try:
            await self._send(topology.work, message, attempt=1)
        except aio_pika.exceptions.DeliveryError:
            # Returned unroutable: the queue was deleted under us. Declare it again
            # next time; the caller keeps the message (the outbox publishes it again).
            self._declared.pop(queue, None)
            raise

    async def _send(self, routing_key: str, message: SeriesMessage, attempt: int,
                    error: str | None = None) -> None:
        headers: dict[str, object] = {ATTEMPT_HEADER: attempt}
        if error:
            headers[ERROR_HEADER] = error
        body = aio_pika.Message(
            message.to_bytes(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json", headers=headers,  # type: ignore[arg-type]
            correlation_id=message.trace_id,
        )
        await (await self._publisher()).default_exchange.publish(
            body, routing_key=routing_key, timeout=PUBLISH_TIMEOUT)

    async def _publisher(self) -> AbstractChannel:
        """The publishing channel, opened again if the broker closed it alone."""
        connection = await self._connection()
        if self._publish_channel is None or self._publish_channel.is_closed:
            self._publish_channel = await connection.channel(publisher_confirms=True,
                                                             on_return_raises=True)
        return self._publish_channel

    async def consume(self, queue: str, handler: Handler, on_give_up: GiveUp) -> None:
        await self.declare(queue)
        subscription = _Subscription(queue, handler, on_give_up)
        self._subscriptions.append(subscription)
        await self._start(await self._connection(), subscription)

    async def _start(self, connection: AbstractConnection, subscription: _Subscription) -> None:
        if subscription.channel is not None and not subscription.channel.is_closed:
            return  # already consuming (a reconnection started it meanwhile)
        channel = subscription.channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        source = await channel.get_queue(subscription.queue, ensure=False)

        async def deliver(incoming: AbstractIncomingMessage) -> None:
            self._in_flight += 1
            self._idle.clear()
            try:
                await self._deliver(subscription, incoming)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

        subscription.consumer = (source, await source.consume(deliver))
        channel.close_callbacks.add(
            lambda _channel, _exc=None: self._channel_lost(connection, subscription))

    def _channel_lost(self, connection: AbstractConnection, subscription: _Subscription) -> None:
        # The broker closed only this channel (its consumer timeout on a long series, an
        # operator's action): consume again. A lost connection is the link's to handle.
        if not self._accepting or connection.is_closed or \
                self._link.connection is not connection:
            return
        log.warning("consumer channel closed by the broker; consuming again",
                    extra={"queue": subscription.queue})
        task = asyncio.get_running_loop().create_task(self._start(connection, subscription))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _deliver(self, subscription: _Subscription,
                       incoming: AbstractIncomingMessage) -> None:
        topology = self._declared[subscription.queue]
        try:
            message = SeriesMessage.from_bytes(incoming.body)
        except ValueError as exc:
            # A message nobody can read would loop forever: park it where people look.
            log.error("unreadable message parked", extra={"queue": topology.work})
            await self._settle(incoming.ack, self._park(topology, incoming.body, exc))
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
                await subscription.handler(message, attempt)
            except Exception as exc:  # every failure goes through the same retry policy
                failure = exc
        if failure is not None:
            try:
                await self._after_failure(topology, subscription, message, attempt, failure)
            except Exception:  # the broker or database is down: keep the message
                log.warning("could not schedule the retry; message returned to the queue",
                            exc_info=True)
                await asyncio.sleep(self._retry.base_delay)
                await self._settle(incoming.nack, None, requeue=True)
                return
        await self._settle(incoming.ack, None)

    async def _park(self, topology: Topology, body: bytes, exc: Exception) -> None:
        await (await self._publisher()).default_exchange.publish(
            aio_pika.Message(body, headers={ERROR_HEADER: describe(exc)},
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=topology.dead, timeout=PUBLISH_TIMEOUT)

    @staticmethod
    async def _settle(settle, before, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """Ack or nack; on a channel lost meanwhile the broker has already put the
        message back, and it comes again as a redelivery."""
        try:
            if before is not None:
                await before
            await settle(**kwargs)
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
            log.warning("could not settle a message: its channel is gone; it will come again")

    async def _after_failure(self, topology: Topology, subscription: _Subscription,
                             message: SeriesMessage, attempt: int, exc: Exception) -> None:
        error = describe(exc)
        if attempt >= self._retry.max_attempts:
            await self._send(topology.dead, message, attempt, error=error)
            await subscription.on_give_up(message, error)
            return
        delay = self._retry.delay(attempt)
        log.warning("retrying", extra={"series_id": message.series_id, "attempt": attempt,
                                       "delay_s": delay, "error_type": type(exc).__name__})
        await self._send(topology.retry_queue(delay), message, attempt + 1, error=error)

    async def stop_consuming(self) -> None:
        self._accepting = False
        for subscription in self._subscriptions:
            if subscription.consumer is None:
                continue
            source, tag = subscription.consumer
            try:
                await source.cancel(tag)
            except Exception:  # the channel may already be gone; nothing more to stop
                log.debug("cancel failed", exc_info=True)
            subscription.consumer = None

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
        connection = await self._connection()
        async with connection.channel() as channel:
            underlay = await channel.get_underlay_channel()
            for queue, topology in sorted(self._declared.items()):
                counted = {queue: [topology.work], f"{queue}.retry": list(topology.retry.values()),
                           f"{queue}.dead": [topology.dead]}
                for label, names in counted.items():
                    depths[label] = 0
                    for name in names:
                        result = await underlay.queue_declare(name, passive=True)
                        depths[label] += result.message_count or 0
        return depths

    async def is_healthy(self) -> bool:
        return self._link.is_connected()

    async def close(self) -> None:
        await self._link.close()
