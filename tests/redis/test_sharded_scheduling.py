"""Scheduled messages on a sharded channel wait on, and join, the shard their message would
go to without a delay (toolkit/channels/redis/shards.py picks it); listing and cancelling
cover every shard. Deduplication works per shard (copies share one)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from tests.redis.test_priorities import ack_failing_once
from toolkit import Consumer
from toolkit.channels.redis import ChannelOptions, RedisTransport, SyncRedisTransport
from toolkit.channels.redis.shards import shard_name, shard_of
from toolkit.envelope import Envelope

CHANNEL = "ticket_commands"
SHARDS = 4


def _later(n: int, seconds: float, key: str | None = None) -> Envelope:
    metadata = {"partition_key": key} if key else {}
    return ticket_create(n, deliver_at_ms=int((time.time() + seconds) * 1000), metadata=metadata)


def _waiting(
    client: redis.Redis, transport: RedisTransport | SyncRedisTransport
) -> dict[int, set[str]]:
    """Message ids waiting in each shard's scheduled set."""
    return {
        i: {
            m.decode()
            for m in client.zrange(transport.keys(shard_name(CHANNEL, i)).scheduled, 0, -1)
        }
        for i in range(SHARDS)
    }


async def test_a_scheduled_message_waits_on_and_joins_its_own_shard(
    redis_url: str, prefix: str
) -> None:
    transport = RedisTransport(
        redis_url, prefix=prefix, channels={CHANNEL: ChannelOptions(shards=SHARDS)}
    )
    client = redis.Redis.from_url(redis_url)
    sent = [_later(i, 0.6) for i in range(12)] + [_later(99, 0.6, key="customer-7")]
    await transport.send(CHANNEL, sent)
    expected: dict[int, set[str]] = {i: set() for i in range(SHARDS)}
    for envelope in sent:
        expected[shard_of(envelope, SHARDS)].add(envelope.headers.message_id)
    assert len([i for i, ids in expected.items() if ids]) > 1  # the test means something
    assert _waiting(client, transport) == expected
    listed = await transport.scheduled(CHANNEL)
    assert {m.message_id for m in listed} == {e.headers.message_id for e in sent}
    assert {m.channel for m in listed} == {CHANNEL}
    # A sharded subscription releases each shard's into that shard's stream.
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    got: list[Any] = []
    deadline = time.monotonic() + 5
    while len(got) < len(sent) and time.monotonic() < deadline:
        got += await sub.receive(100, 0.2)
    assert {d.message_id for d in got} == {e.headers.message_id for e in sent}
    await sub.ack(got)
    for i in range(SHARDS):
        stream = transport.keys(shard_name(CHANNEL, i)).stream
        ids = {fields[b"message_id"].decode() for _, fields in client.xrange(stream)}
        assert ids == expected[i], i
    await sub.close()
    await transport.close()
    client.close()


async def test_cancelling_finds_a_scheduled_message_on_any_shard(
    redis_url: str, prefix: str
) -> None:
    transport = RedisTransport(
        redis_url, prefix=prefix, channels={CHANNEL: ChannelOptions(shards=SHARDS)}
    )
    sent = [_later(i, 60 + i) for i in range(12)]
    await transport.send(CHANNEL, sent)
    ids = [e.headers.message_id for e in sent]
    assert await transport.cancel_scheduled(CHANNEL, ids[:8]) == 8
    assert {m.message_id for m in await transport.scheduled(CHANNEL)} == set(ids[8:])
    # Listed soonest first across shards, at most ``count``.
    two = await transport.scheduled(CHANNEL, count=2)
    assert [m.message_id for m in two] == ids[8:10]
    await transport.close()


async def test_the_sync_transport_sends_to_the_same_shards(redis_url: str, prefix: str) -> None:
    options = {CHANNEL: ChannelOptions(shards=SHARDS)}
    sync = SyncRedisTransport(redis_url, prefix=prefix, channels=options)
    client = redis.Redis.from_url(redis_url)
    later = [_later(i, 60) for i in range(12)]
    now = [ticket_create(i) for i in range(12)]
    sync.send_sync(CHANNEL, later)
    sync.send_sync(CHANNEL, now)
    expected: dict[int, set[str]] = {i: set() for i in range(SHARDS)}
    for envelope in later:
        expected[shard_of(envelope, SHARDS)].add(envelope.headers.message_id)
    assert _waiting(client, sync) == expected
    for i in range(SHARDS):
        stream = sync.keys(shard_name(CHANNEL, i)).stream
        ids = {fields[b"message_id"].decode() for _, fields in client.xrange(stream)}
        assert ids == {e.headers.message_id for e in now if shard_of(e, SHARDS) == i}
    sync.close()
    client.close()
    await asyncio.sleep(0)


async def test_an_acknowledgement_that_failed_goes_to_the_same_shard_again(
    redis_url: str, prefix: str
) -> None:
    """Entry ids repeat across shards: a failed acknowledgement, made again, is made on
    the shard the message came from."""
    transport = RedisTransport(
        redis_url, prefix=prefix, channels={CHANNEL: ChannelOptions(shards=2)}
    )
    sub: Any = await transport.subscribe(CHANNEL, "svc", "c1")
    for i in range(2):
        stream = transport.keys(shard_name(CHANNEL, i)).stream
        await transport.redis.xadd(stream, ticket_create(i).to_fields(), id="1-1")  # type: ignore[arg-type]
    got: list[Any] = []
    while len(got) < 2:
        got += await sub.receive(10, 0.2)
    # The one from shard 1: a delivery of unknown origin would go to shard 0.
    got.sort(key=lambda d: sub._owner[id(d)] is sub._shards[0])
    first = sub._owner[id(got[0])].stream
    await ack_failing_once(sub, first, got[:1])
    pending = [await transport.pending_count(shard_name(CHANNEL, i), "svc") for i in range(2)]
    assert sorted(pending) == [0, 1]
    assert await transport.pending_count(first.keyed, "svc") == 0
    await sub.ack(got[1:])
    await sub.close()
    await transport.close()


async def test_a_sharded_channel_deduplicates(redis_url: str, prefix: str) -> None:
    """Copies of a message (one id) go to one shard, whose records skip them: handled once,
    over every shard, by a consumer with a window."""
    transport = RedisTransport(
        redis_url, prefix=prefix, channels={CHANNEL: ChannelOptions(shards=SHARDS)}
    )
    app = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(app), deduplicate=60.0)
    await consumer.subscription()
    sent = [ticket_create(n) for n in range(40)]
    copies = [ticket_create(n, message_id=e.headers.message_id) for n, e in enumerate(sent)]
    assert len({shard_of(e, SHARDS) for e in sent}) > 1  # the test means something
    await transport.send(CHANNEL, sent)
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(10):
            while len(app.ids) < len(sent):
                await asyncio.sleep(0.02)
        await transport.send(CHANNEL, copies)  # a later batch: the records answer
        async with asyncio.timeout(10):
            while consumer.stats.deduplicated < len(copies):
                await asyncio.sleep(0.02)
    finally:
        consumer.stop()
        await task
        await consumer.close()
        await transport.close()
    assert sorted(app.ids) == sorted(e.headers.message_id for e in sent)
