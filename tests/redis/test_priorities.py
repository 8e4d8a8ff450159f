"""Priorities on Redis (toolkit/channels/redis/priorities.py): a band stream per priority,
opened with every group before its first message; reclaim, dead letters, status, groups
and scheduling cover the bands. The ordering itself is the conformance suite's
(tests/channels/suite/priorities.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from tests.channels.suite.helpers import envelope
from toolkit import TransportError
from toolkit.channels.redis import ChannelOptions, RedisTransport, SyncRedisTransport
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.shards import shard_name, shard_of

CHANNEL = "user_events"


async def take(sub: Any, count: int, timeout: float = 5.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += await sub.receive(count - len(got), 0.1)
    return got


async def backlog(transport: RedisTransport, sent: list[Any], send: Any = None) -> Any:
    """The group made, ``sent`` waiting, then a consumer: it knows the bands from the start
    (one that is reading when a band appears finds it with its next read)."""
    await (await transport.subscribe(CHANNEL, "svc", "c0")).close()
    await (send or transport.send)(CHANNEL, sent)
    return await transport.subscribe(CHANNEL, "svc", "c1")


async def ack_failing_once(sub: Any, stream: Any, deliveries: list[Any]) -> None:
    """``sub.ack(deliveries)`` failing (connection lost on ``stream``), then made again."""
    call = stream._call

    async def broken(payload: bytes) -> Any:
        raise redis.ConnectionError("connection reset")

    stream._call = broken
    with pytest.raises(TransportError):
        await sub.ack(deliveries)
    stream._call = call
    await sub.ack(deliveries)


async def test_priority_zero_makes_no_band(make_transport: Any, redis_url: str) -> None:
    transport: RedisTransport = make_transport()
    await transport.send(CHANNEL, [envelope(), envelope()])
    client = redis.Redis.from_url(redis_url)
    keys = transport.keys(CHANNEL)
    assert client.keys(f"{keys.stream}:*") == []
    client.close()


async def test_a_band_has_every_group_before_its_first_message(make_transport: Any) -> None:
    """A group the bus expects, with no consumer yet, finds a band's message although the
    band was trimmed by another group meanwhile."""
    transport: RedisTransport = make_transport(trim_acknowledged=True, trim_interval=0.0)
    transport.expect_groups(CHANNEL, ["billing", "audit"])
    billing = await transport.subscribe(CHANNEL, "billing", "b1")
    urgent = envelope(priority=5)
    await transport.send(CHANNEL, [urgent])
    got = await take(billing, 1)
    assert [d.message_id for d in got] == [urgent.headers.message_id]
    await billing.ack(got)
    await billing.close()
    assert await transport.redis.xlen(transport.keys(CHANNEL).band(5)) == 1  # audit needs it
    audit = await transport.subscribe(CHANNEL, "audit", "a1")
    got = await take(audit, 1)
    assert [(d.message_id, d.envelope.headers.priority) for d in got] == [
        (urgent.headers.message_id, 5)
    ]
    await audit.ack(got)
    await audit.close()


async def test_a_band_entry_of_a_stopped_consumer_is_reclaimed(make_transport: Any) -> None:
    transport: RedisTransport = make_transport(visibility_timeout=0.2, reclaim_interval=0.05)
    first = await transport.subscribe(CHANNEL, "svc", "c1")
    second = await transport.subscribe(CHANNEL, "svc", "c2")
    urgent = envelope(priority=9)
    await transport.send(CHANNEL, [urgent])
    assert len(await take(first, 1)) == 1  # and never settled: c1 stopped
    await asyncio.sleep(0.3)
    again = await take(second, 1)
    assert [(d.message_id, d.delivery_count) for d in again] == [(urgent.headers.message_id, 2)]
    await second.ack(again)
    await second.close()
    await first.close()


async def test_a_dead_letter_of_a_band_is_replayed_to_its_band(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    urgent = envelope(priority=7)
    sub = await backlog(transport, [envelope(), urgent])
    got = await take(sub, 2)
    assert got[0].message_id == urgent.headers.message_id
    await sub.reject(got[0], "boom")
    await sub.ack(got[1:])
    (dead,) = await transport.dead_letters(CHANNEL)
    assert dead.envelope is not None and dead.envelope.headers.priority == 7
    await transport.send(CHANNEL, [envelope() for _ in range(3)])
    assert await transport.replay(CHANNEL, [dead.dead_letter_id]) == 1
    # Replayed behind three priority-0 messages, it is taken first: it is in its band.
    again = await take(sub, 4)
    assert again[0].message_id == urgent.headers.message_id
    assert again[0].envelope.headers.priority == 7
    await sub.ack(again)
    await sub.close()


async def test_status_and_groups_count_the_bands(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    sub = await backlog(transport, [envelope(), envelope(priority=3), envelope(priority=8)])
    status = await transport.status(CHANNEL)
    assert status.length == 3
    (group,) = status.groups
    assert (group.name, group.lag, group.pending) == ("svc", 3, 0)
    got = await take(sub, 3)
    assert [d.envelope.headers.priority for d in got] == [8, 3, 0]
    (group,) = (await transport.status(CHANNEL)).groups
    assert (group.lag, group.pending) == (0, 3)
    assert [(c.name, c.pending) for c in group.consumers if c.pending] == [("c1", 3)]
    await sub.ack(got)
    await sub.close()
    assert await transport.remove_group(CHANNEL, "svc")
    band = transport.keys(CHANNEL).band(8)
    assert await transport.redis.xinfo_groups(band) == []


async def test_a_scheduled_message_with_a_priority_joins_its_band(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    due = int((time.time() + 0.3) * 1000)
    later = envelope(priority=6, deliver_at_ms=due)
    await transport.send(CHANNEL, [later])
    band = transport.keys(band_name(CHANNEL, 6))
    assert await transport.redis.zcard(band.scheduled) == 1  # waiting on its band
    # Listed and cancellable with the channel's (toolkit scheduled).
    assert [m.message_id for m in await transport.scheduled(CHANNEL)] == [later.headers.message_id]
    other = envelope(priority=6, deliver_at_ms=due + 60_000)
    await transport.send(CHANNEL, [other])
    assert await transport.cancel_scheduled(CHANNEL, [other.headers.message_id]) == 1
    got = await take(sub, 1, timeout=3)
    assert [(d.message_id, d.envelope.headers.priority) for d in got] == [
        (later.headers.message_id, 6)
    ]
    assert time.time() * 1000 >= due
    await sub.ack(got)
    await sub.close()


async def test_the_sync_transport_sends_to_the_bands(make_transport: Any, redis_url: str) -> None:
    transport: RedisTransport = make_transport()
    sync = SyncRedisTransport(redis_url, prefix=transport.prefix, options=ChannelOptions())
    sent = [envelope(), envelope(priority=4), envelope(priority=9)]

    async def send(channel: str, envelopes: list[Any]) -> None:
        sync.send_sync(channel, envelopes)

    sub = await backlog(transport, sent, send)
    sync.close()
    got = await take(sub, 3)
    assert [d.envelope.headers.priority for d in got] == [9, 4, 0]
    await sub.ack(got)
    await sub.close()


async def test_on_a_sharded_channel_each_shard_has_its_bands(make_transport: Any) -> None:
    transport: RedisTransport = make_transport(shards=4)
    await (await transport.subscribe(CHANNEL, "svc", "c0")).close()
    low = [envelope(metadata={"partition_key": "k"}) for _ in range(5)]
    urgent = [envelope(priority=9, metadata={"partition_key": "k"}) for _ in range(2)]
    await transport.send(CHANNEL, [*low, *urgent])
    shard = shard_name(CHANNEL, shard_of(low[0], 4))
    assert await transport.redis.xlen(transport.keys(shard).band(9)) == 2
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    got = await take(sub, 7)
    assert [d.message_id for d in got] == [e.headers.message_id for e in [*urgent, *low]]
    await sub.ack(got)
    await sub.close()


async def test_an_acknowledgement_that_failed_goes_to_the_same_stream_again(
    make_transport: Any,
) -> None:
    """Entry ids repeat across streams: a band entry whose acknowledgement failed is
    acknowledged on its band the next time, never on the channel's stream."""
    transport: RedisTransport = make_transport()
    urgent = envelope(priority=9)
    sub: Any = await backlog(transport, [urgent])
    keys = transport.keys(CHANNEL)
    (band_id,) = [i.decode() for i, _ in await transport.redis.xrange(keys.band(9))]
    same_id = envelope()
    await transport.redis.xadd(keys.stream, same_id.to_fields(), id=band_id)  # type: ignore[arg-type]
    got = await take(sub, 2)
    assert [d.delivery_id for d in got] == [band_id, band_id]
    await ack_failing_once(sub, sub._bands[0], got[:1])
    # The channel's entry of that id is still in hand; the band's is acknowledged.
    assert await transport.pending_count(CHANNEL, "svc") == 1
    assert await transport.pending_count(band_name(CHANNEL, 9), "svc") == 0
    await sub.ack(got[1:])
    await sub.close()
