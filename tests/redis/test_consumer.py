"""The consumer on Redis: entries written by redis-cli, work sharing, recovery.

What every transport must do under a consumer (retries, dead letters, replay,
poison input) is in the channel conformance suite, ``tests/channels/suite/consumer.py``."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest

import generated.ticket_service as ticket_service
from tests.channels.suite.helpers import Running, wait_for
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from tests.redis.server import RedisServer
from toolkit import Consumer
from toolkit.channels.redis import RedisTransport

CHANNEL = "ticket_commands"


async def test_entry_written_with_redis_cli_is_handled(
    make_transport: Any, redis_server: RedisServer, prefix: str
) -> None:
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers))
    async with Running(consumer):
        # Exactly as docs/wire-format.md tells a non-Python program to write it.
        subprocess.run(
            [
                "redis-cli",
                "-p",
                str(redis_server.port),
                "XADD",
                f"{prefix}:{{{CHANNEL}}}",
                "*",
                "message_id",
                "php-0001",
                "routing_key",
                "ticket.create",
                "kind",
                "command",
                "source_service",
                "php_app",
                "target_service",
                "ticket_service",
                "timestamp",
                "1767268800000",
                "metadata",
                '{"tenant":"acme"}',
                "body",
                '{"ticket_id":"0b6c3d5e-2f0a-4c1e-9d3b-5a7e8f9a0b1c","subject":"Printer on fire","requester_email":"it@acme.test","priority":"urgent"}',
            ],
            check=True,
            capture_output=True,
        )
        await wait_for(lambda: bool(handlers.deliveries))
    meta, message = handlers.deliveries[0], handlers.messages[0]
    h = meta.headers
    assert (h.message_id, h.source_service, h.correlation_id, h.timestamp_ms) == (
        "php-0001",
        "php_app",
        "php-0001",
        1767268800000,
    )
    assert h.metadata == {"tenant": "acme"}
    assert message.subject == "Printer on fire" and message.priority.value == "urgent"


async def test_two_consumers_of_one_group_share_the_work_without_double_handling(
    make_transport: Any,
) -> None:
    a_handlers, b_handlers = Memory(), Memory()
    a = Consumer(
        make_transport(), CHANNEL, ticket_service.bind(a_handlers), consumer_name="a", batch_size=20
    )
    b = Consumer(
        make_transport(), CHANNEL, ticket_service.bind(b_handlers), consumer_name="b", batch_size=20
    )
    sender: RedisTransport = make_transport()
    sent = [ticket_create(i) for i in range(2000)]
    async with Running(a), Running(b):
        for i in range(0, len(sent), 100):
            await sender.send(CHANNEL, sent[i : i + 100])
            await asyncio.sleep(0.005)
        await wait_for(lambda: len(a_handlers.ids) + len(b_handlers.ids) >= len(sent))
    ids_a, ids_b = a_handlers.ids, b_handlers.ids
    assert len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b)
    assert not set(ids_a) & set(ids_b)
    assert set(ids_a) | set(ids_b) == {e.headers.message_id for e in sent}
    assert ids_a and ids_b


@pytest.mark.parametrize("delete", ["stream", "group"])
async def test_consumer_recovers_when_its_stream_or_group_is_deleted(
    make_transport: Any, delete: str
) -> None:
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), block_timeout=0.5)
    first = [ticket_create(i) for i in range(50)]
    second = [ticket_create(i) for i in range(50)]
    stream = transport.keys(CHANNEL).stream
    async with Running(consumer):
        await transport.send(CHANNEL, first)
        await wait_for(lambda: len(handlers.ids) == 50)
        await asyncio.sleep(0.1)  # the consumer is blocked in XREADGROUP again
        if delete == "stream":
            await transport.redis.delete(stream)
        else:
            await transport.redis.xgroup_destroy(stream, "ticket_service")
        await asyncio.sleep(0.2)
        await transport.send(CHANNEL, second)
        await wait_for(lambda: len(handlers.ids) >= 100)
    # Nothing handled twice: the group came back after the last entry it had read.
    assert handlers.ids == [e.headers.message_id for e in first + second]


async def test_consumer_of_a_stopped_server_backs_off_and_comes_back(tmp_path: Any) -> None:
    server = RedisServer(tmp_path / "r", appendonly=True).start()
    try:
        transport = RedisTransport(server.url, prefix="outage")
        handlers = Memory()
        consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), block_timeout=0.3)
        async with Running(consumer):
            await transport.send(CHANNEL, [ticket_create(0)])
            await wait_for(lambda: len(handlers.ids) == 1)
            server.kill()
            await asyncio.sleep(1.5)  # several failed attempts, each after a pause
            server.start()
            sent = ticket_create(1)
            await transport.send(CHANNEL, [sent])
            await wait_for(lambda: len(handlers.ids) == 2, timeout=15)
        assert handlers.ids[1] == sent.headers.message_id
        await transport.close()
    finally:
        server.stop()


async def test_receive_acking_acknowledges_the_batch_and_reads_the_next(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport()
    sub = await transport.subscribe(CHANNEL, "ticket_service", "c1")
    envelopes = [ticket_create(i) for i in range(5)]
    await transport.send(CHANNEL, envelopes[:3])
    first = await sub.receive(10, 0)
    await transport.send(CHANNEL, envelopes[3:])
    second = await sub.receive_acking(first, 10, 0)
    assert [d.message_id for d in second] == [e.headers.message_id for e in envelopes[3:]]
    # The first three are acknowledged; the two just read are pending.
    assert await transport.pending_count(CHANNEL, "ticket_service") == 2
    await sub.ack(second)
    assert await transport.pending_count(CHANNEL, "ticket_service") == 0
    await sub.close()


async def test_a_batch_that_needs_only_acknowledgements_costs_one_round_trip(
    make_transport: Any,
) -> None:
    # Its XACK goes in one write with the next XREADGROUP (AcksOnReceive).
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), batch_size=10)
    sub = await consumer.subscription()
    await transport.send(CHANNEL, [ticket_create(i) for i in range(50)])
    writes = 0
    conn = await sub.stream._conn.get()  # type: ignore[attr-defined]
    send = conn.send_packed_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal writes
        writes += 1
        return await send(*args, **kwargs)

    conn.send_packed_command = counting
    stats = await consumer.run(until_empty=True)
    assert stats.handled == 50
    # Five batches, one write each, and the read that finds the stream empty.
    assert writes == 6, writes
    assert await transport.pending_count(CHANNEL, "ticket_service") == 0
    await consumer.close()
