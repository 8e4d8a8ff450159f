"""Retry later (DelayedRetry): back after the delay and not before, others flowing meanwhile."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.channels.suite.helpers import Features, channel_name, envelope, needs, receive_all
from toolkit import DelayedRetry, Transport

pytestmark = pytest.mark.asyncio

DELAY = 0.6
#: the Redis transport schedules by the server's clock, in whole milliseconds
SLACK = 0.05


async def retrying(
    transport: Transport, features: Features, consumer: str = "c1"
) -> tuple[str, Any]:
    """A new channel and a subscription to it, a Subscription and a DelayedRetry
    (the test is skipped when the transport cannot retry later)."""
    needs(features.delayed_retry, "retry later")
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", consumer)
    assert isinstance(sub, DelayedRetry)
    return ch, sub


async def test_retry_later_hands_the_message_back_after_the_delay_not_before(
    transport: Transport, features: Features
) -> None:
    ch, sub = await retrying(transport, features)
    flaky, other = envelope(), envelope()
    await transport.send(ch, [flaky, other])
    first, second = await receive_all(sub, 2)
    scheduled = time.monotonic()
    await sub.retry_later(first, DELAY)
    await sub.ack([second])
    # Other messages keep flowing while the retry waits.
    later = envelope()
    await transport.send(ch, [later])
    flowing = await sub.receive(10, DELAY / 3)
    assert [d.message_id for d in flowing] == [later.headers.message_id]
    await sub.ack(flowing)
    got = await receive_all(sub, 1, timeout=DELAY * 5)
    assert time.monotonic() - scheduled >= DELAY - SLACK
    assert [(d.message_id, d.delivery_count) for d in got] == [(flaky.headers.message_id, 2)]
    await sub.ack(got)
    await sub.close()


async def test_the_delivery_count_grows_with_each_retry(
    transport: Transport, features: Features
) -> None:
    ch, sub = await retrying(transport, features)
    sent = envelope()
    await transport.send(ch, [sent])
    counts = []
    for _ in range(3):
        [d] = await receive_all(sub, 1)
        counts.append(d.delivery_count)
        await sub.retry_later(d, 0.05)
    [d] = await receive_all(sub, 1)
    await sub.ack([d])
    assert counts + [d.delivery_count] == [1, 2, 3, 4]
    assert d.message_id == sent.headers.message_id and d.envelope == sent
    await sub.close()


async def test_a_retry_waits_its_delay_even_when_its_consumer_goes_away(
    transport: Transport, features: Features
) -> None:
    ch, gone = await retrying(transport, features, "gone")
    sent = envelope()
    await transport.send(ch, [sent])
    [d] = await receive_all(gone, 1)
    scheduled = time.monotonic()
    await gone.retry_later(d, DELAY)
    await gone.close()
    other = await transport.subscribe(ch, "svc", "other")
    assert list(await other.receive(10, DELAY / 3)) == []
    got = await receive_all(other, 1, timeout=DELAY * 5)
    assert time.monotonic() - scheduled >= DELAY - SLACK
    assert [d.message_id for d in got] == [sent.headers.message_id]
    assert got[0].delivery_count == 2
    await other.ack(got)
    await other.close()
