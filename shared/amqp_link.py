"""One connection to a RabbitMQ cluster, to whichever listed node answers.

aio-pika's robust connection reconnects to the one URL it was given; a cluster
behind several URLs needs the client to move on to another node when its own
goes. The link tries the nodes in turn (from a random one, so that a fleet of
workers spreads over the cluster), and when its connection is lost it starts
again from the node after the lost one. After each (re)connection it calls
``on_connected`` with the new connection, which reopens channels and consumers:
durable quorum queues live on in the cluster, so nothing else needs restoring.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractConnection
from yarl import URL

log = logging.getLogger(__name__)

OnConnected = Callable[[AbstractConnection], Awaitable[None]]
CONNECT_TIMEOUT = 10.0


def split_urls(value: str) -> list[str]:
    """``RELAY_AMQP_URL`` may list the nodes of a cluster, comma separated."""
    return [part.strip() for part in value.split(",") if part.strip()]


def node_of(url: str) -> str:
    """host:port of a broker URL, for logs (never its credentials)."""
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}"


class BrokerLink:
    def __init__(self, urls: Sequence[str], on_connected: OnConnected, name: str,
                 max_wait: float = 30.0) -> None:
        if not urls:
            raise ValueError("no broker URL given")
        self._urls = list(urls)
        self._next = random.randrange(len(self._urls))
        self._current = self._next
        self._on_connected = on_connected
        self._name = name
        self._max_wait = max_wait
        self._connection: AbstractConnection | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None

    @property
    def connection(self) -> AbstractConnection | None:
        return self._connection

    @property
    def node(self) -> str | None:
        """The node this link is connected to now."""
        return node_of(self._urls[self._current]) if self._connection is not None else None

    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def wait_connected(self, timeout: float) -> AbstractConnection:
        await asyncio.wait_for(self._connected.wait(), timeout)
        assert self._connection is not None
        return self._connection

    async def open(self) -> None:
        """Connect to a node, waiting with backoff while none answers (the cluster may
        start after us)."""
        delay = 0.5
        while not self._closing:
            for _ in range(len(self._urls)):
                if await self._try(self._urls[self._next]):
                    return
            log.warning("no broker node reachable, retrying", extra={"delay_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_wait)

    async def _try(self, url: str) -> bool:
        self._current, self._next = self._next, (self._next + 1) % len(self._urls)
        try:
            connection = await aio_pika.connect(
                url, timeout=CONNECT_TIMEOUT,
                client_properties={"connection_name": self._name})
        except (ConnectionError, OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
            log.warning("broker node unreachable", extra={
                "node": node_of(url), "error_type": type(exc).__name__})
            return False
        try:
            await self._on_connected(connection)
        except Exception as exc:  # the node went while we set up: on to the next
            log.warning("broker node failed while opening channels", extra={
                "node": node_of(url), "error_type": type(exc).__name__})
            await connection.close()
            return False
        connection.close_callbacks.add(self._lost)
        self._connection = connection
        self._connected.set()
        log.info("connected to broker node", extra={"node": node_of(url)})
        return True

    def _lost(self, connection: object, _exc: BaseException | None = None) -> None:
        if self._closing or connection is not self._connection:
            return
        log.warning("lost the broker node; moving on to the next", extra={"node": self.node})
        self._connection = None
        self._connected.clear()
        self._reconnecting = asyncio.get_running_loop().create_task(self.open())

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
