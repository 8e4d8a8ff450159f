"""Deduplication's records on Redis: written as each step succeeds, read back with the next
round trip (toolkit/channels/redis/dedup.py). What every pipe must do is in the channel
conformance suite, ``tests/channels/suite/deduplication.py``."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, TransportError
from toolkit.channels.redis import RedisTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


class Wire:
    """Counts what goes over one connection: writes, and round trips (a read that
    follows a write: the consumer waits for Redis)."""

    def __init__(self, conn: Any) -> None:
        self.writes = self.round_trips = 0
        self._wrote = False
        send, read = conn.send_packed_command, conn.read_response

        async def counting_send(*args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            self._wrote = True
            return await send(*args, **kwargs)

        async def counting_read(*args: Any, **kwargs: Any) -> Any:
            if self._wrote:
                self.round_trips += 1
                self._wrote = False
            return await read(*args, **kwargs)

        conn.send_packed_command = counting_send
        conn.read_response = counting_read


async def test_records_and_checks_ride_the_reads(make_transport: Any) -> None:
    """Each record is a write whose reply comes with the next read; with a backlog (the
    last read filled its batch) the read checks what it reads (READ_SEEN). Three
    batches of three record steps: a ZMSCORE for the first, one round trip each."""
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(
        transport, CHANNEL, ticket_service.bind(handlers), batch_size=30, deduplicate=3600
    )
    sub: Any = await consumer.subscription()
    await transport.send(CHANNEL, [ticket_create(i) for i in range(30)])
    await consumer.run(until_empty=True)  # the script loaded
    await transport.send(CHANNEL, [ticket_create(i) for i in range(90)])
    wire = Wire(await sub.stream._conn.get())
    stats = await consumer.run(until_empty=True)
    assert stats.handled == 120
    # A read and a ZMSCORE, then two reads that check, and the one that finds nothing.
    assert wire.round_trips == 5, (wire.round_trips, wire.writes)
    # Three records per batch, each in a write of its own.
    assert wire.writes == 5 + 9, wire.writes
    seen = await sub.seen(handlers.deliveries)
    assert seen == set(handlers.ids)
    assert await transport.pending_count(CHANNEL, GROUP) == 0
    await consumer.close()


async def test_a_checking_read_skips_what_the_group_handled(make_transport: Any) -> None:
    """Copies met by a checking read (a backlog) are acknowledged unhandled, as ever."""
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(
        transport, CHANNEL, ticket_service.bind(handlers), batch_size=10, deduplicate=3600
    )
    sent = [ticket_create(i) for i in range(40)]
    copies = [ticket_create(i, message_id=e.headers.message_id) for i, e in enumerate(sent[:5])]
    await transport.send(CHANNEL, [*sent, *copies])
    stats = await consumer.run(until_empty=True)
    assert (stats.handled, stats.deduplicated) == (40, 5)
    assert sorted(handlers.ids) == sorted(e.headers.message_id for e in sent)
    await consumer.close()


async def test_a_step_is_recorded_before_the_next_step_runs(
    make_transport: Any, redis_url: str
) -> None:
    """A crash repeats at most the step in hand: while the third step of a batch runs, the
    records of the first two are on the server already (read here on a connection of its own)."""
    transport: RedisTransport = make_transport()
    key = transport.keys(CHANNEL).seen(GROUP)
    other = redis.Redis.from_url(redis_url)
    sent = [ticket_create(i) for i in range(30)]
    found: list[int] = []

    def look(message: Any, meta: Any) -> None:
        if meta.message_id != sent[25].headers.message_id:
            return
        ids = [e.headers.message_id for e in sent[:20]]
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            scores = other.zmscore(key, ids)
            found[:] = [i for i, score in enumerate(scores) if score is not None]
            if len(found) == 20:
                return
            time.sleep(0.01)

    consumer = Consumer(
        transport, CHANNEL, ticket_service.bind(Memory(look)), batch_size=30, deduplicate=3600
    )
    await transport.send(CHANNEL, sent)
    await consumer.run(until_empty=True)
    await consumer.close()
    other.close()
    assert found == list(range(20))


async def test_records_whose_write_failed_are_written_with_the_next_round_trip(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport()
    sub: Any = (await transport.subscribe(CHANNEL, GROUP, "c1")).stream
    await transport.send(CHANNEL, [ticket_create(i) for i in range(3)])
    got = await sub.receive(10, 0)
    conn = await sub._conn.get()
    send = conn.send_packed_command

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("connection reset")

    conn.send_packed_command = broken
    with pytest.raises(TransportError):
        await sub.remember(got[:2], 3600)
    conn.send_packed_command = send
    other: Any = await transport.subscribe(CHANNEL, GROUP, "c2")
    assert await other.seen(got) == set()
    # The acknowledgement's round trip writes the records first.
    await sub.ack(got)
    assert await other.seen(got) == {d.message_id for d in got[:2]}
    assert await transport.pending_count(CHANNEL, GROUP) == 0
    await sub.close()
    await other.close()


async def test_closing_confirms_records_in_flight(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    sub: Any = (await transport.subscribe(CHANNEL, GROUP, "c1")).stream
    await transport.send(CHANNEL, [ticket_create(1)])
    got = await sub.receive(10, 0)
    await sub.remember(got, 3600)
    held = sub._conn
    assert held.unread
    await sub.close()
    assert (held.unread, sub._records) == (0, [])
    again: Any = await transport.subscribe(CHANNEL, GROUP, "c2")
    assert await again.seen(got) == {got[0].message_id}
    await again.close()
