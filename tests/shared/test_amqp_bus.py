"""The RabbitMQ bus against the real broker: delivery, retry with delay, dead letters."""

from __future__ import annotations

import asyncio

import pytest

from relay_shared.amqp import AmqpBus
from relay_shared.bus import InProcessBus, RetryPolicy
from relay_shared.messages import SeriesMessage
from relay_shared.reasons import RelayError
from tests.support.services import AMQP_URL

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
