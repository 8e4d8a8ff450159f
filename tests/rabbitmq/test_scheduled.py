"""Scheduled messages on RabbitMQ: the cascade of TTL wait queues (``schedule.py``).

The conformance part ``scheduling`` checks the promises (not before due, every group,
no consumer needed); these check the cascade itself: the routing keys add up to the
delay exactly, a message walks down several levels on the broker alone, and what the
cascade cannot hold is refused before anything is sent."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.channels.suite.helpers import envelope
from toolkit.channels.rabbitmq import RabbitTransport
from toolkit.channels.rabbitmq.schedule import LEVEL_MS, MAX_DELAY_MS, channel_word, route

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


def waited(key: str) -> int:
    """The milliseconds a routing key makes a message wait: its levels' TTLs."""
    words = key.split(".")[:-1]
    return sum(LEVEL_MS[level] for level, word in enumerate(words) if word == "1")


def test_a_routing_key_waits_exactly_the_delay_and_enters_at_its_top_level() -> None:
    rng = random.Random(3)
    delays = [1, 2, 3, 13, 1000, 2**31 - 1, 2**31, 2**32 - 1, 2**32, MAX_DELAY_MS]
    delays += [rng.randrange(1, MAX_DELAY_MS) for _ in range(2000)]
    for delay in delays:
        top, key = route(delay, "ch")
        words = key.split(".")
        assert waited(key) == delay, delay
        assert words[-1] == "ch" and len(words) == top + 2 and words[top] == "1"
        assert set(words[:-1]) <= {"0", "1"}
    assert route(13, "x") == (3, "1.0.1.1.x")
    for bad in (0, -5, MAX_DELAY_MS + 1):
        with pytest.raises(ValueError):
            route(bad, "ch")


def test_a_channel_is_one_literal_word_of_the_routing_key() -> None:
    assert channel_word("ticket_commands") == "ticket_commands"
    for name in ("a.b", "*", "#", "a.#.b", "50%"):
        word = channel_word(name)
        assert "." not in word and word not in ("*", "#")
    assert len({channel_word(n) for n in ("a.b", "a%2Eb", "a%b", "a%25b")}) == 4


async def test_a_delay_beyond_the_cascade_is_refused_before_anything_is_sent(
    amqp_url: str, prefix: str
) -> None:
    transport = RabbitTransport(amqp_url, prefix=prefix, groups={CHANNEL: [GROUP]})
    try:
        too_far = envelope(deliver_at_ms=int(time.time() * 1000) + MAX_DELAY_MS + 60_000)
        with pytest.raises(ValueError, match=r"at most 447 days.*docs/rabbitmq.md#scheduled"):
            await transport.send(CHANNEL, [envelope(), too_far])
        await transport.send(CHANNEL, [envelope()])
        assert await transport.queue_length(transport.names(CHANNEL).queue(GROUP)) == 1
    finally:
        await transport.delete_declared()
        await transport.close()


async def test_delivered_by_the_broker_alone_through_several_levels_never_early(
    amqp_url: str, prefix: str
) -> None:
    """1,500 ms is seven levels (1024+256+128+64+16+8+4); the group's queue holds nothing
    before it is due and the message once due, with no consumer and the sender gone."""
    sender = RabbitTransport(amqp_url, prefix=prefix, groups={CHANNEL: [GROUP]})
    due = int(time.time() * 1000) + 1500
    sent = envelope(deliver_at_ms=due)
    await sender.send(CHANNEL, [sent])
    await sender.close()
    probe = RabbitTransport(amqp_url, prefix=prefix)
    probe._made_queues |= sender._made_queues  # deleted afterwards by the probe
    probe._made_exchanges |= sender._made_exchanges
    queue = probe.names(CHANNEL).queue(GROUP)
    try:
        while time.time() * 1000 < due - 50:
            assert await probe.queue_length(queue) == 0, "delivered early"
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 5
        while await probe.queue_length(queue) != 1:
            assert time.monotonic() < deadline, "not delivered"
            await asyncio.sleep(0.02)
        sub = await probe.subscribe(CHANNEL, GROUP, "c1")
        (got,) = await sub.receive(1, 2)
        assert got.envelope == sent and got.delivery_count == 1
        await sub.ack([got])
        await sub.close()
    finally:
        await probe.delete_declared()
        await probe.close()
