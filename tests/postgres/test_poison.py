"""The consumer never dies of a row: whatever bytes a hand-written entry holds, it is
handled, skipped or dead-lettered with the reason, alone, and every dead letter counted."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generated.ticket_service as ticket_service
from tests.postgres.server import drop
from tests.redis.apps import Memory
from tests.redis.test_poison import BAD_UTF8, TOO_DEEP, command, entries, ticket_body
from toolkit import Consumer, Runner, RunOptions
from toolkit.channels.postgres import PostgresTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


async def unsettled(transport: PostgresTransport) -> int:
    async with transport.pool.connection("counting") as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {transport._s}.deliveries")
        row = await cur.fetchone()
    return int(row[0]) if row else -1


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_bad_bodies_in_a_batch_are_dead_lettered_alone(
    postgres_url: str, schema: str, concurrency: int
) -> None:
    transport = PostgresTransport(postgres_url, prefix=schema)
    rows = [command(f"good-{i}", ticket_body(f"ticket {i}")) for i in range(5)]
    rows.insert(2, command("bad-utf8", BAD_UTF8))
    rows.insert(4, command("too-deep", TOO_DEEP))
    for fields in rows:
        await transport.add_raw(CHANNEL, fields)
    handlers = Memory()
    runner = Runner(
        transport,
        CHANNEL,
        ticket_service.bind(handlers),
        RunOptions(until_empty=True, concurrency=concurrency),
    )
    stats = await runner.run()
    assert sorted(handlers.ids) == [f"good-{i}" for i in range(5)]
    if concurrency == 1:
        assert handlers.ids == [f"good-{i}" for i in range(5)]
    dead = {d.fields["message_id"]: d.reason for d in await transport.dead_letters(CHANNEL)}
    assert set(dead) == {b"bad-utf8", b"too-deep"}
    assert dead[b"bad-utf8"].startswith("cannot decode 'ticket.create' as CreateTicket: ")
    assert "UnicodeDecodeError" in dead[b"bad-utf8"]
    assert "RecursionError" in dead[b"too-deep"]
    assert (stats.handled, stats.rejected) == (5, 2)
    assert await unsettled(transport) == 0
    await transport.close()


async def test_dead_letters_on_receipt_count_and_stop_on_failure_sees_them(
    postgres_url: str, schema: str
) -> None:
    transport = PostgresTransport(postgres_url, prefix=schema, max_message_bytes=1000)
    await transport.add_raw(CHANNEL, {"routing_key": "ticket.create", "body": "{}"})
    await transport.add_raw(CHANNEL, command("too-large", b"x" * 1001))
    for i in range(3):
        await transport.add_raw(CHANNEL, command(f"good-{i}", ticket_body(f"ticket {i}")))
    handlers = Memory()
    dispatcher = ticket_service.bind(handlers)
    options = RunOptions(stop_on_failure=True, until_empty=True, batch_size=2)
    runner = Runner(transport, CHANNEL, dispatcher, options)
    stats = await runner.run()
    assert runner.reason == "failure"
    assert (stats.rejected, stats.received, stats.handled) == (2, 2, 0)
    runner = Runner(transport, CHANNEL, dispatcher, RunOptions(until_empty=True, batch_size=2))
    stats = await runner.run()
    assert runner.reason == "empty" and handlers.ids == ["good-0", "good-1", "good-2"]
    reasons = sorted(d.reason for d in await transport.dead_letters(CHANNEL))
    assert reasons == [
        "invalid envelope: missing header field(s): message_id, kind, source_service",
        "message too large: body is 1001 bytes, the channel's limit is 1000",
    ]
    await transport.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(entries(), min_size=1, max_size=8), batch_size=st.integers(1, 8))
def test_arbitrary_entries_are_handled_skipped_or_dead_lettered_never_lost(
    postgres_url: str, batch: list[list[bytes]], batch_size: int
) -> None:
    async def scenario(schema: str) -> None:
        transport = PostgresTransport(
            postgres_url, prefix=schema, max_message_bytes=300_000, visibility_timeout=60
        )
        try:
            handlers = Memory()
            consumer = Consumer(
                transport, CHANNEL, ticket_service.bind(handlers), batch_size=batch_size
            )
            await consumer.subscription()
            for flat in batch:
                await transport.add_raw(CHANNEL, dict(zip(flat[::2], flat[1::2], strict=True)))
            stats = await consumer.run(until_empty=True)
            await consumer.close()
            dead = len(await transport.dead_letters(CHANNEL))
            assert stats.handled == len(handlers.deliveries)
            assert stats.rejected == dead and stats.failed == stats.retried == 0
            assert stats.handled + stats.skipped + dead == len(batch)
            assert await unsettled(transport) == 0
        finally:
            await transport.close()

    schema = f"fuzz_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(scenario(schema))
    finally:
        drop(postgres_url, schema)
