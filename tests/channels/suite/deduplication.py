"""Deduplication (Deduplicates): a message id the group handled within the window is
acknowledged without calling the handler again; records expire; a failed handler
leaves no record (at least once)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import generated.ticket_service as ticket_service
from tests.channels.suite.helpers import (
    Features,
    channel_name,
    envelope,
    needs,
    receive_all,
)
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, RetryPolicy, Transport
from toolkit.channels.base import Deduplicates

pytestmark = pytest.mark.asyncio

CHANNEL = "ticket_commands"
WINDOW = 3600.0
#: short enough to wait out in a test, long enough to outlast a round trip on a busy machine
SHORT_WINDOW = 0.5


async def deduplicating(
    transport: Transport, features: Features, channel: str, group: str = "svc"
) -> Any:
    needs(features.deduplication, "deduplication")
    sub = await transport.subscribe(channel, group, "c1")
    assert isinstance(sub, Deduplicates)
    return sub


async def test_remembered_ids_are_seen_by_the_group_only(
    transport: Transport, features: Features
) -> None:
    ch, other_ch = channel_name(), channel_name()
    sub = await deduplicating(transport, features, ch)
    other_group = await deduplicating(transport, features, ch, group="other")
    other_channel = await deduplicating(transport, features, other_ch)
    sent = [envelope() for _ in range(3)]
    await transport.send(ch, sent)
    got = await receive_all(sub, 3)
    assert await sub.seen(got) == set()
    await sub.remember(got[:2], WINDOW)
    assert await sub.seen(got) == {d.message_id for d in got[:2]}
    # Another consumer of the group shares the record; other groups and channels do not.
    same_group = await deduplicating(transport, features, ch)
    assert await same_group.seen(got) == {d.message_id for d in got[:2]}
    assert await other_group.seen(got) == set()
    assert await other_channel.seen(got) == set()
    await sub.ack(got)
    for s in (sub, other_group, other_channel, same_group):
        await s.close()


async def test_a_record_expires_after_its_window(transport: Transport, features: Features) -> None:
    ch = channel_name()
    sub = await deduplicating(transport, features, ch)
    await transport.send(ch, [envelope(), envelope()])
    short, long = await receive_all(sub, 2)
    await sub.remember([short], SHORT_WINDOW)
    await sub.remember([long], WINDOW)
    assert await sub.seen([short, long]) == {short.message_id, long.message_id}
    await asyncio.sleep(SHORT_WINDOW + 0.3)
    assert await sub.seen([short, long]) == {long.message_id}
    # Remembered again: seen again, for the new window.
    await sub.remember([short], WINDOW)
    assert await sub.seen([short]) == {short.message_id}
    await sub.ack([short, long])
    await sub.close()


def _dedup_consumer(transport: Transport, handlers: Memory, **options: Any) -> Consumer:
    options.setdefault("deduplicate", WINDOW)
    return Consumer(transport, CHANNEL, ticket_service.bind(handlers), **options)


async def test_the_same_message_id_published_again_is_handled_once(
    transport: Transport, features: Features
) -> None:
    needs(features.deduplication, "deduplication")
    handlers = Memory()
    consumer = _dedup_consumer(transport, handlers, batch_size=10)
    first = ticket_create(1)
    copy = ticket_create(1, message_id=first.headers.message_id)
    others = [ticket_create(n) for n in range(2, 5)]
    # A copy in the same batch, and copies in later batches.
    await transport.send(CHANNEL, [first, others[0], copy])
    await consumer.run(until_empty=True)
    await transport.send(CHANNEL, [copy, *others[1:]])
    await consumer.run(until_empty=True)
    await consumer.close()
    ids = handlers.ids
    assert sorted(ids) == sorted(m.headers.message_id for m in [first, *others])
    stats = consumer.stats
    assert (stats.deduplicated, stats.skipped, stats.handled) == (2, 2, 4)
    # Every copy was acknowledged: a new consumer of the group finds nothing.
    again = _dedup_consumer(transport, Memory())
    assert (await again.run(until_empty=True)).received == 0
    await again.close()


async def test_a_record_is_shared_by_the_consumers_of_a_group(
    transport: Transport, features: Features
) -> None:
    needs(features.deduplication, "deduplication")
    one, two = Memory(), Memory()
    first = ticket_create(1)
    await transport.send(CHANNEL, [first])
    a = _dedup_consumer(transport, one, consumer_name="a")
    await a.run(until_empty=True)
    await a.close()
    await transport.send(CHANNEL, [ticket_create(1, message_id=first.headers.message_id)])
    b = _dedup_consumer(transport, two, consumer_name="b")
    await b.run(until_empty=True)
    await b.close()
    assert (len(one.ids), len(two.ids), b.stats.deduplicated) == (1, 0, 1)


async def test_a_failed_handler_leaves_no_record(transport: Transport, features: Features) -> None:
    """The record is written after success only: a failure is retried and handled."""
    needs(features.deduplication, "deduplication")
    needs(features.delayed_retry, "retry later")
    failures: list[str] = []

    def once_broken(message: Any, meta: Any) -> None:
        if not failures:
            failures.append(meta.message_id)
            raise ConnectionError("downstream unavailable")

    handlers = Memory(once_broken)
    retry = RetryPolicy(attempts=3, base=0.05, cap=0.1, jitter=0)
    consumer = _dedup_consumer(transport, handlers, retry=retry)
    sent = ticket_create(1)
    await transport.send(CHANNEL, [sent])
    await consumer.run(until_empty=True)
    assert handlers.ids == [sent.headers.message_id]
    assert (consumer.stats.retried, consumer.stats.handled, consumer.stats.deduplicated) == (
        1,
        1,
        0,
    )
    # Handled now: a copy is not.
    await transport.send(CHANNEL, [ticket_create(1, message_id=sent.headers.message_id)])
    await consumer.run(until_empty=True)
    await consumer.close()
    assert (len(handlers.ids), consumer.stats.deduplicated) == (1, 1)


async def test_a_message_id_is_handled_again_once_the_window_passed(
    transport: Transport, features: Features
) -> None:
    needs(features.deduplication, "deduplication")
    handlers = Memory()
    consumer = _dedup_consumer(transport, handlers, deduplicate=SHORT_WINDOW)
    sent = ticket_create(1)
    await transport.send(CHANNEL, [sent])
    await consumer.run(until_empty=True)
    await transport.send(CHANNEL, [ticket_create(1, message_id=sent.headers.message_id)])
    await consumer.run(until_empty=True)
    assert (len(handlers.ids), consumer.stats.deduplicated) == (1, 1)
    await asyncio.sleep(SHORT_WINDOW + 0.3)
    await transport.send(CHANNEL, [ticket_create(1, message_id=sent.headers.message_id)])
    await consumer.run(until_empty=True)
    await consumer.close()
    assert (len(handlers.ids), consumer.stats.deduplicated) == (2, 1)


async def test_without_deduplication_every_copy_is_handled(transport: Transport) -> None:
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers))
    sent = ticket_create(1)
    await transport.send(CHANNEL, [sent, ticket_create(1, message_id=sent.headers.message_id)])
    await consumer.run(until_empty=True)
    await consumer.close()
    assert len(handlers.ids) == 2 and consumer.stats.deduplicated == 0
