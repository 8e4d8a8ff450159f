"""Priorities on RabbitMQ: a quorum queue per priority and group, consumed together,
the highest first (docs/rabbitmq.md#priorities). The conformance part ``priorities``
checks the order; these check what keeps a message in its priority's queue: a retry,
a replay, a send before any group existed, a scheduled send, and that acknowledging
urgent messages never acknowledges the lower ones still waiting in the buffer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.suite.helpers import envelope
from toolkit import Envelope
from toolkit.channels.rabbitmq import RabbitSubscription, RabbitTransport

CHANNEL = "orders"
GROUP = "svc"


@pytest.fixture
async def transport(amqp_url: str, prefix: str) -> AsyncIterator[RabbitTransport]:
    t = RabbitTransport(amqp_url, prefix=prefix)
    yield t
    await t.delete_declared()
    await t.close()


def low(count: int) -> list[Envelope]:
    return [envelope(body=b'{"low":1}') for _ in range(count)]


async def with_backlog(transport: RabbitTransport, count: int) -> RabbitSubscription:
    """A consumer whose buffer holds low-priority messages (the broker pushed them)."""
    await (await transport.subscribe(CHANNEL, GROUP, "c0")).close()
    await transport.send(CHANNEL, low(count))
    sub = await transport.subscribe(CHANNEL, GROUP, "c1")
    deadline = time.monotonic() + 5
    while sub._buffered() < min(count, 100):  # pushed ahead, up to the first prefetch
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    return sub


async def first_of_next_batch(sub: RabbitSubscription, wanted: str, timeout: float = 5) -> Any:
    """Receive batches of 10 until ``wanted`` comes: first of its batch, within three
    batches of the backlog (which holds dozens). The others are acknowledged."""
    deadline = time.monotonic() + timeout
    batches = 0
    while time.monotonic() < deadline:
        batch = await sub.receive(10, 0.05)
        batches += 1 if batch else 0
        assert batches <= 3, "behind the backlog"
        await sub.ack([d for d in batch if d.message_id != wanted])
        ids = [d.message_id for d in batch]
        if wanted in ids:
            assert ids.index(wanted) == 0, ids
            return batch[0]
    raise AssertionError("never came")


async def urgent_in_hand(
    transport: RabbitTransport, priority: int
) -> tuple[RabbitSubscription, Envelope, Any]:
    """A consumer with a backlog, holding (unsettled) a message of ``priority`` sent after."""
    sub = await with_backlog(transport, 500)
    urgent = envelope(priority=priority)
    await transport.send(CHANNEL, [urgent])
    return sub, urgent, await first_of_next_batch(sub, urgent.headers.message_id)


async def test_a_retried_message_comes_back_into_its_priority(
    transport: RabbitTransport,
) -> None:
    sub, urgent, got = await urgent_in_hand(transport, 9)
    await sub.retry_later(got, 0.01)
    await asyncio.sleep(0.3)  # back in a queue: taking the backlog meanwhile proves nothing
    again = await first_of_next_batch(sub, urgent.headers.message_id)
    assert again.delivery_count == 2 and again.envelope.headers.priority == 9
    await sub.ack([again])
    await sub.close()


async def test_a_replayed_dead_letter_comes_back_into_its_priority(
    transport: RabbitTransport,
) -> None:
    sub, urgent, got = await urgent_in_hand(transport, 6)
    await sub.reject(got, "boom")
    (letter,) = await transport.dead_letters(CHANNEL)
    assert await transport.replay(CHANNEL, [letter.dead_letter_id]) == 1
    await asyncio.sleep(0.2)
    again = await first_of_next_batch(sub, urgent.headers.message_id)
    assert again.envelope.headers.priority == 6
    await sub.ack([again])
    await sub.close()


async def test_sent_before_any_group_existed_keeps_its_priority(
    transport: RabbitTransport,
) -> None:
    """What waits in the unrouted queue is moved into the first group's queue of each
    message's priority."""
    sent = [*low(5), envelope(priority=3), *low(5), envelope(priority=8)]
    await transport.send(CHANNEL, sent)
    sub = await transport.subscribe(CHANNEL, GROUP, "c1")
    got: list[Any] = []
    deadline = time.monotonic() + 5
    while len(got) < len(sent) and time.monotonic() < deadline:
        got.extend(await sub.receive(len(sent) - len(got), 0.5))
    await sub.ack(got)
    assert [d.envelope.headers.priority for d in got[:2]] == [8, 3]
    assert [d.message_id for d in got[2:]] == [
        e.headers.message_id for e in sent if e.headers.priority == 0
    ]
    await sub.close()


async def test_a_scheduled_message_arrives_in_its_priority(transport: RabbitTransport) -> None:
    sub = await with_backlog(transport, 500)
    urgent = envelope(priority=9, deliver_at_ms=int(time.time() * 1000) + 300)
    await transport.send(CHANNEL, [urgent])
    await asyncio.sleep(0.5)
    got = await first_of_next_batch(sub, urgent.headers.message_id)
    assert time.time() * 1000 >= urgent.headers.deliver_at_ms
    assert got.envelope == urgent
    await sub.ack([got])
    await sub.close()


async def test_acknowledging_urgent_ones_leaves_the_buffered_backlog_unacknowledged(
    transport: RabbitTransport, amqp_url: str, prefix: str
) -> None:
    """The urgent messages were pushed after the backlog (higher delivery tags): one
    ``multiple`` acknowledgement up to them would settle the backlog still in the buffer.
    Closed then, the backlog must all come again."""
    sub = await with_backlog(transport, 50)
    urgent = [envelope(priority=9) for _ in range(5)]
    await transport.send(CHANNEL, urgent)
    batch = await sub.receive(5, 2)
    assert [d.message_id for d in batch] == [e.headers.message_id for e in urgent]
    await sub.ack(batch)
    await sub.close()
    await asyncio.sleep(0.2)
    queue = transport.names(CHANNEL).queue(GROUP)
    assert await transport.queue_length(queue) == 50
