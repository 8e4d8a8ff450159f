"""``status`` on RabbitMQ (docs/rabbitmq.md#status): what passive declarations tell, per
group the messages ready in its queues of every priority (lag) and in its retry wait
queues (retrying), the dead letters, the consumers counted but not named; pending is
unknown, and a channel or group whose queues do not exist is empty and stays undeclared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.channels.suite.helpers import envelope
from toolkit.channels.base import ReportsStatus
from toolkit.channels.rabbitmq import RabbitTransport
from toolkit.channels.status import ChannelStatus, GroupStatus

CHANNEL = "orders"


@pytest.fixture
async def transport(amqp_url: str, prefix: str) -> AsyncIterator[RabbitTransport]:
    t = RabbitTransport(amqp_url, prefix=prefix, groups={CHANNEL: ["svc", "other"]})
    yield t
    await t.delete_declared()
    await t.close()


def figures(status: ChannelStatus) -> list[tuple[str, int | None, int, int | None]]:
    """Each group's name, lag, retrying and consumer count; pending is never known."""
    assert all(not g.pending_known and g.oldest_pending_age is None for g in status.groups)
    assert all(g.consumers == [] for g in status.groups)
    return [(g.name, g.lag, g.retrying, g.consumer_count) for g in status.groups]


async def settled(transport: RabbitTransport, want: ChannelStatus) -> ChannelStatus:
    """The status once it is ``want``: a closed consumer's messages come back to the
    quorum queue as the broker applies the close (at once, give or take a round)."""
    for _ in range(50):
        status = await transport.status(CHANNEL)
        if status == want:
            break
        await asyncio.sleep(0.05)
    return status


def group(name: str, lag: int, retrying: int = 0, consumers: int = 0) -> GroupStatus:
    return GroupStatus(
        name=name,
        lag=lag,
        pending=0,
        pending_known=False,
        retrying=retrying,
        oldest_pending_age=None,
        consumer_count=consumers,
    )


async def test_counts_after_sends_and_after_consuming_part(transport: RabbitTransport) -> None:
    assert isinstance(transport, ReportsStatus)
    await transport.send(CHANNEL, [envelope() for _ in range(5)])
    status = await transport.status(CHANNEL)
    assert figures(status) == [("other", 5, 0, 0), ("svc", 5, 0, 0)]
    # A copy per group; nothing dead, no leases.
    assert (status.length, status.dead_letters, status.visibility_timeout) == (10, 0, None)
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    got = await sub.receive(2, 1)
    assert len(got) == 2
    await sub.ack(got)
    held = await transport.status(CHANNEL)
    [_, svc] = held.groups
    # The consumer is counted; what it holds unacknowledged is not ready (lag <= 3).
    assert svc.consumer_count == 1 and svc.lag is not None and svc.lag <= 3
    await sub.close()
    want = ChannelStatus(
        channel=CHANNEL, length=8, dead_letters=0, groups=[group("other", 5), group("svc", 3)]
    )
    assert await settled(transport, want) == want


async def test_a_retry_waiting_and_a_dead_letter(transport: RabbitTransport) -> None:
    await transport.send(CHANNEL, [envelope() for _ in range(4)])
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    first, second = await sub.receive(2, 1)
    await sub.retry_later(first, 3600)
    await sub.reject(second, "test: bad")
    await sub.close()
    want = ChannelStatus(
        channel=CHANNEL,
        length=4 + 2 + 1,
        dead_letters=1,
        groups=[group("other", 4), group("svc", 2, retrying=1)],
    )
    assert await settled(transport, want) == want


async def test_messages_of_every_priority_count(transport: RabbitTransport) -> None:
    await transport.send(CHANNEL, [envelope(priority=p) for p in (0, 1, 5, 9, 9)])
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    [urgent] = await sub.receive(1, 1)
    assert urgent.envelope.headers.priority == 9
    await sub.retry_later(urgent, 3600)  # waits in the wait queue of priorities 1..9
    await sub.close()
    want = ChannelStatus(
        channel=CHANNEL,
        length=10,
        dead_letters=0,
        groups=[group("other", 5), group("svc", 4, retrying=1)],
    )
    assert await settled(transport, want) == want


async def test_an_unknown_channel_is_empty_and_stays_undeclared(
    transport: RabbitTransport,
) -> None:
    # The channel has expected groups, but nothing was ever sent to it.
    assert await transport.status(CHANNEL) == ChannelStatus(
        channel=CHANNEL, length=0, dead_letters=0
    )
    assert await transport.status("nowhere") == ChannelStatus(
        channel="nowhere", length=0, dead_letters=0
    )
    names = transport.names(CHANNEL)
    for queue in (names.queue("svc"), names.dead, names.unrouted, names.retry_queue("svc", 16)):
        assert await transport.queue_length(queue) is None, queue
    # The refusals closed only the probes' channels: the transport still works.
    await transport.send(CHANNEL, [envelope()])
    assert figures(await transport.status(CHANNEL)) == [("other", 1, 0, 0), ("svc", 1, 0, 0)]


async def test_a_group_subscribed_here_is_known_without_being_expected(
    amqp_url: str, prefix: str
) -> None:
    transport = RabbitTransport(amqp_url, prefix=prefix)
    try:
        sub = await transport.subscribe(CHANNEL, "late", "c1")
        await sub.close()
        await transport.send(CHANNEL, [envelope(), envelope()])
        status = await transport.status(CHANNEL)
        assert figures(status) == [("late", 2, 0, 0)]
        assert status.length == 2
    finally:
        await transport.delete_declared()
        await transport.close()
