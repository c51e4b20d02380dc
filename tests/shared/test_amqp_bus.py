"""The RabbitMQ bus against the real broker: delivery, retry with delay, dead letters."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from relay_shared.amqp import ATTEMPT_HEADER, DELIVERY_LIMIT, AmqpBus, QueueTypeMismatch
from relay_shared.bus import InProcessBus, RetryPolicy
from relay_shared.messages import SeriesMessage
from relay_shared.reasons import RelayError
from tests.support.services import AMQP_URL, delete_queues, free_port

pytestmark = [pytest.mark.rabbitmq]


class DestinationDown(RelayError):
    """A failure whose reason the relay wrote, so it travels as it is."""


@pytest.fixture(params=["amqp", "inprocess"])
async def bus(request: pytest.FixtureRequest, queue_prefix: str):  # type: ignore[no-untyped-def]
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    made = AmqpBus(AMQP_URL, policy) if request.param == "amqp" else InProcessBus(policy)
    await made.connect()
    yield made
    await made.close()


async def test_messages_arrive_once_each(bus, queue_prefix: str) -> None:  # type: ignore[no-untyped-def]
    queue = f"{queue_prefix}.deid"
    seen: list[int] = []
    done = asyncio.Event()

    async def handler(message: SeriesMessage, attempt: int) -> None:
        seen.append(message.series_id)
        if len(seen) == 3:
            done.set()

    async def give_up(message: SeriesMessage, error: str) -> None:
        raise AssertionError("nothing should be given up")

    await bus.consume(queue, handler, give_up)
    for series_id in (1, 2, 3):
        await bus.publish(queue, SeriesMessage(series_id=series_id))
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(seen) == [1, 2, 3]


async def test_failures_are_retried_then_given_up(bus, queue_prefix: str) -> None:  # type: ignore[no-untyped-def]
    queue = f"{queue_prefix}.send"
    attempts: list[int] = []
    given_up: list[str] = []
    done = asyncio.Event()

    async def handler(message: SeriesMessage, attempt: int) -> None:
        attempts.append(attempt)
        raise DestinationDown("destination down")

    async def give_up(message: SeriesMessage, error: str) -> None:
        given_up.append(error)
        done.set()

    await bus.consume(queue, handler, give_up)
    await bus.publish(queue, SeriesMessage(series_id=7))
    await asyncio.wait_for(done.wait(), 15)
    assert attempts == [1, 2, 3]
    assert given_up == ["DestinationDown: destination down"]
    if isinstance(bus, AmqpBus):
        await asyncio.sleep(0.3)
        depths = await bus.queue_depths()
        assert depths[f"{queue}.dead"] == 1
        assert depths[queue] == 0


async def _raw_publish(queue: str, series_id: int, attempt: int) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(
            SeriesMessage(series_id=series_id).to_bytes(), headers={ATTEMPT_HEADER: attempt},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue)


async def test_a_short_retry_is_not_held_back_by_a_long_one(queue_prefix: str) -> None:
    # Series 1 is on its fourth attempt (a 2 s wait after it fails), series 2 on its
    # first (0.25 s): series 2's retry is due first and must come first, although it
    # was scheduled after series 1's.
    bus = AmqpBus(AMQP_URL, RetryPolicy(max_attempts=6, base_delay=0.25))
    await bus.connect()
    queue = f"{queue_prefix}.deid"
    await bus.declare(queue)
    arrivals: list[tuple[int, int]] = []
    both_retried = asyncio.Event()

    async def handler(message: SeriesMessage, attempt: int) -> None:
        arrivals.append((message.series_id, attempt))
        if len(arrivals) == 4:
            both_retried.set()
        if len(arrivals) <= 2:
            raise RuntimeError("destination down")

    async def give_up(message: SeriesMessage, error: str) -> None:
        raise AssertionError("nothing should be given up")

    try:
        await _raw_publish(queue, series_id=1, attempt=4)
        await _raw_publish(queue, series_id=2, attempt=1)
        await bus.consume(queue, handler, give_up)
        await asyncio.wait_for(both_retried.wait(), 15)
    finally:
        await bus.close()
    assert arrivals == [(1, 4), (2, 1), (2, 2), (1, 5)]


async def test_a_message_that_keeps_killing_its_worker_ends_dead(queue_prefix: str) -> None:
    # A worker that takes the message and dies before settling it, over and over: the
    # broker's delivery limit moves it to the dead-letter queue by itself.
    bus = AmqpBus(AMQP_URL, RetryPolicy(max_attempts=3, base_delay=0.1))
    await bus.connect()
    queue = f"{queue_prefix}.deid"
    try:
        await bus.publish(queue, SeriesMessage(series_id=9))
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            for _ in range(DELIVERY_LIMIT + 1):
                channel = await connection.channel()
                taken = await (await channel.get_queue(queue)).get(no_ack=False, fail=False)
                await channel.close()  # dies holding it
                if taken is None:
                    break
        await asyncio.sleep(0.5)
        depths = await bus.queue_depths()
    finally:
        await bus.close()
    assert depths[queue] == 0
    assert depths[f"{queue}.dead"] == 1


async def test_an_older_classic_queue_of_the_same_name_is_named_in_the_error(
        queue_prefix: str) -> None:
    queue = f"{queue_prefix}.send"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True)  # as an older release made it
    bus = AmqpBus(AMQP_URL, RetryPolicy())
    await bus.connect()
    try:
        with pytest.raises(QueueTypeMismatch, match=rf"queue {queue} exists .* quorum"):
            await bus.publish(queue, SeriesMessage(series_id=1))
    finally:
        await bus.close()


async def test_a_listed_node_that_is_down_is_passed_over(queue_prefix: str) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    for urls in (f"{dead},{AMQP_URL}", f"{AMQP_URL},{dead}"):
        bus = AmqpBus(urls, RetryPolicy())
        await asyncio.wait_for(bus.connect(), 30)
        try:
            await bus.publish(f"{queue_prefix}.deid", SeriesMessage(series_id=1))
            assert bus.node == "127.0.0.1:5672"
        finally:
            await bus.close()


async def test_a_queue_deleted_under_the_bus_is_declared_again(queue_prefix: str) -> None:
    # An operator deletes the queue: the next publish fails loudly (the outbox keeps the
    # message), it is not dropped as unroutable; the one after declares it again.
    bus = AmqpBus(AMQP_URL, RetryPolicy())
    await bus.connect()
    queue = f"{queue_prefix}.send"
    try:
        await bus.publish(queue, SeriesMessage(series_id=1))
        await asyncio.to_thread(delete_queues, queue_prefix)
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await bus.publish(queue, SeriesMessage(series_id=2))
        await bus.publish(queue, SeriesMessage(series_id=3))
        depths = await bus.queue_depths()
    finally:
        await bus.close()
    assert depths[queue] == 1


async def test_a_consumer_channel_closed_alone_is_opened_again(queue_prefix: str) -> None:
    # As when the broker closes a consumer's channel (its consumer timeout on a long
    # series) while the connection stays: the worker must go on consuming.
    bus = AmqpBus(AMQP_URL, RetryPolicy())
    await bus.connect()
    queue = f"{queue_prefix}.deid"
    seen: list[int] = []
    arrived = asyncio.Event()

    async def handler(message: SeriesMessage, attempt: int) -> None:
        seen.append(message.series_id)
        arrived.set()

    async def give_up(message: SeriesMessage, error: str) -> None:
        raise AssertionError("nothing should be given up")

    try:
        await bus.consume(queue, handler, give_up)
        (subscription,) = bus._subscriptions
        assert subscription.channel is not None
        await subscription.channel.close()
        await asyncio.sleep(0.5)
        await bus.publish(queue, SeriesMessage(series_id=5))
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await bus.close()
    assert seen == [5]
