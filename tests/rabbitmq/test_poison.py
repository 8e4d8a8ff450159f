"""The consumer never dies of a message on RabbitMQ: messages published by hand, as
another language's AMQP client would (any header types, missing headers, bytes that
are not UTF-8, bodies the decoder chokes on), are handled, skipped or dead-lettered
with the reason, alone, and nothing stays in the queue."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import uuid
from typing import Any

import aiormq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands as spec

import generated.ticket_service as ticket_service
from tests.rabbitmq.broker import Vhost
from tests.redis.apps import Memory
from tests.redis.test_poison import BAD_UTF8, TOO_DEEP, command, ticket_body
from toolkit import Consumer, Runner, RunOptions
from toolkit.channels.rabbitmq import RabbitTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


async def publish_raw(url: str, exchange: str, headers: dict[str, Any] | None, body: bytes) -> None:
    """One message through a plain AMQP client, no toolkit code: what another program sends."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.basic_publish(
            body,
            exchange=exchange,
            properties=spec.Basic.Properties(headers=headers, delivery_mode=2),
        )
    finally:
        await connection.close()


async def test_bad_bodies_in_a_batch_are_dead_lettered_alone(amqp_url: str, prefix: str) -> None:
    transport = RabbitTransport(amqp_url, prefix=prefix, groups={CHANNEL: [GROUP]})
    try:
        entries = [command(f"good-{i}", ticket_body(f"ticket {i}")) for i in range(5)]
        entries.insert(2, command("bad-utf8", BAD_UTF8))
        entries.insert(4, command("too-deep", TOO_DEEP))
        for fields in entries:
            await transport.add_raw(CHANNEL, fields)
        handlers = Memory()
        runner = Runner(
            transport, CHANNEL, ticket_service.bind(handlers), RunOptions(until_empty=True)
        )
        stats = await runner.run()
        assert handlers.ids == [f"good-{i}" for i in range(5)]
        dead = {d.fields["message_id"]: d for d in await transport.dead_letters(CHANNEL)}
        assert set(dead) == {b"bad-utf8", b"too-deep"}
        assert dead[b"bad-utf8"].reason.startswith("cannot decode 'ticket.create' as CreateTicket")
        assert "UnicodeDecodeError" in dead[b"bad-utf8"].reason
        assert "RecursionError" in dead[b"too-deep"].reason
        assert (stats.handled, stats.rejected) == (5, 2)
        assert await transport.queue_length(transport.names(CHANNEL).queue(GROUP)) == 0
    finally:
        await transport.close()


async def test_headers_of_other_amqp_types_are_read_as_their_text(
    amqp_url: str, prefix: str
) -> None:
    """An integer timestamp and a table of metadata (natural in other clients) are read;
    bytes that are not UTF-8, a missing header or no headers at all are dead-lettered."""
    transport = RabbitTransport(amqp_url, prefix=prefix, groups={CHANNEL: [GROUP]})
    try:
        await transport.check()
        exchange = transport.names(CHANNEL).exchange
        await transport.send(CHANNEL, [])  # nothing, but declares nothing either
        await transport.ensure_channel(transport.names(CHANNEL))
        good: dict[str, Any] = {k: v for k, v in command("typed", b"").items() if k != "body"}
        good |= {"timestamp": 1767268800000, "metadata": {"tenant": "acme"}}
        await publish_raw(amqp_url, exchange, good, ticket_body("typed"))
        utf8 = {**good, "message_id": "bad-source", "source_service": bytearray(b"\xff\xfe")}
        await publish_raw(amqp_url, exchange, utf8, ticket_body("x"))
        await publish_raw(amqp_url, exchange, None, b"{}")
        await publish_raw(amqp_url, exchange, {**good, "message_id": "k", "kind": 7}, b"{}")
        handlers = Memory()
        runner = Runner(
            transport, CHANNEL, ticket_service.bind(handlers), RunOptions(until_empty=True)
        )
        stats = await runner.run()
        [handled] = handlers.deliveries
        assert handled.message_id == "typed" and handled.metadata == {"tenant": "acme"}
        assert handled.headers.timestamp_ms == 1767268800000
        reasons = sorted(d.reason for d in await transport.dead_letters(CHANNEL))
        assert reasons == [
            "invalid envelope: header field is not UTF-8: source_service: 'utf-8' codec "
            "can't decode byte 0xff in position 0: invalid start byte",
            "invalid envelope: kind must be 'command' or 'event', not '7'",
            "invalid envelope: missing header field(s): message_id, routing_key, kind, "
            "source_service",
        ]
        assert (stats.handled, stats.rejected) == (1, 3)
    finally:
        await transport.close()


# -- arbitrary headers through the real consumer -----------------------------------------

NAMES = [
    "message_id",
    "routing_key",
    "kind",
    "source_service",
    "target_service",
    "timestamp",
    "content_type",
    "correlation_id",
    "causation_id",
    "metadata",
    "body",
    "x-delivery-count",
    "x-toolkit-deliveries",
    "dlq_reason",
]
PLAUSIBLE: dict[str, list[Any]] = {
    "message_id": ["m-1"],
    "routing_key": ["ticket.create", "order.shipped"],
    "kind": ["command", "event"],
    "source_service": ["php_app"],
    "target_service": [GROUP, "billing_service"],
    "timestamp": ["1767268800000", 1767268800000, "-1", 2**63 - 1],
    "metadata": ['{"tenant":"acme"}', {"tenant": "acme"}, {"a": 1}, "[" * 5000],
    "x-delivery-count": [1, "many", -3],
}
#: what an AMQP table value can be (pamqp writes these)
VALUES = st.one_of(
    st.text(max_size=12),
    st.binary(max_size=12).map(bytearray),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.none(),
    st.decimals(places=2, min_value=-1000, max_value=1000).map(decimal.Decimal),
    st.just(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.lists(st.integers(0, 9), max_size=3),
)
BODIES = [ticket_body("fine"), BAD_UTF8, TOO_DEEP, b"{}", b"x" * 300_001, b""]


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any] | None, bytes]:
    headers: dict[str, Any] = {}
    if draw(st.booleans()):
        headers = {k: v for k, v in command("m-1", b"").items() if k != "body"}
        for _ in range(draw(st.integers(0, 2))):
            name = draw(st.sampled_from(NAMES))
            if draw(st.booleans()):
                headers.pop(name, None)
            else:
                headers[name] = draw(st.one_of(st.sampled_from(PLAUSIBLE.get(name, [""])), VALUES))
    else:
        for name in NAMES:
            if draw(st.integers(0, 3)) > 0:
                headers[name] = draw(st.one_of(st.sampled_from(PLAUSIBLE.get(name, [""])), VALUES))
    headers |= draw(st.dictionaries(st.text(max_size=8), VALUES, max_size=2))
    body = draw(st.one_of(st.sampled_from(BODIES), st.binary(max_size=40)))
    return (headers if headers or draw(st.booleans()) else None), body


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(messages(), min_size=1, max_size=6), batch_size=st.integers(1, 6))
def test_arbitrary_messages_are_handled_skipped_or_dead_lettered_never_lost(
    rabbit_vhost: Vhost, batch: list[tuple[dict[str, Any] | None, bytes]], batch_size: int
) -> None:
    async def scenario() -> None:
        prefix = f"fuzz{uuid.uuid4().hex[:10]}"
        transport = RabbitTransport(rabbit_vhost.url, prefix=prefix, max_message_bytes=300_000)
        try:
            handlers = Memory()
            consumer = Consumer(
                transport,
                CHANNEL,
                ticket_service.bind(handlers),
                batch_size=batch_size,
                block_timeout=0.2,
            )
            await consumer.subscription()  # the group exists before the messages
            exchange = transport.names(CHANNEL).exchange
            for headers, body in batch:
                await publish_raw(rabbit_vhost.url, exchange, headers, body)
            await asyncio.sleep(0.1)
            stats = await consumer.run(until_empty=True)
            await consumer.close()
            dead = len(await transport.dead_letters(CHANNEL))
            assert stats.handled == len(handlers.deliveries)
            assert stats.rejected == dead and stats.failed == stats.retried == 0
            assert stats.handled + stats.skipped + dead == len(batch)
            assert await transport.queue_length(transport.names(CHANNEL).queue(GROUP)) == 0
        finally:
            await transport.delete_declared()
            await transport.close()

    asyncio.run(scenario())
