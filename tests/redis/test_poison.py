"""The consumer never dies of a message: whatever bytes an entry holds, it is handled,
skipped or dead-lettered with the reason, alone, and every dead letter is counted."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.server import RedisServer
from toolkit import Consumer, InMemoryTransport, Runner, RunOptions
from toolkit.channels.redis import ChannelOptions, RedisTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"
TICKET = b'"ticket_id":"0b6c3d5e-2f0a-4c1e-9d3b-5a7e8f9a0b1c","requester_email":"a@b.c"'
#: the two bodies outside testers found: invalid UTF-8 inside a JSON string, and
#: 100,000-deep nesting in a field the class does not know
BAD_UTF8 = b'{"subject":"\xff\xfe",' + TICKET + b"}"
TOO_DEEP = b'{"subject":"s","junk":' + b"[" * 100_000 + b"]" * 100_000 + b"," + TICKET + b"}"


def ticket_body(subject: str) -> bytes:
    return b'{"subject":"' + subject.encode() + b'",' + TICKET + b"}"


def command(message_id: str, body: bytes) -> dict[str, str | bytes]:
    """A ticket.create entry as another program writes it (no timestamp)."""
    return {
        "message_id": message_id,
        "routing_key": "ticket.create",
        "kind": "command",
        "source_service": "php_app",
        "target_service": GROUP,
        "body": body,
    }


async def xadd_raw(url: str, stream: str, flat: list[bytes]) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.execute_command("XADD", stream, "*", *flat)  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_bad_bodies_in_a_batch_are_dead_lettered_alone(
    make_transport: Any, kind: str, concurrency: int
) -> None:
    transport: Any = InMemoryTransport() if kind == "memory" else make_transport()
    entries = [command(f"good-{i}", ticket_body(f"ticket {i}")) for i in range(5)]
    entries.insert(2, command("bad-utf8", BAD_UTF8))
    entries.insert(4, command("too-deep", TOO_DEEP))
    for fields in entries:
        if kind == "memory":
            transport.add_raw(CHANNEL, fields)
        else:
            await transport.add_raw(CHANNEL, fields)
    handlers = Memory()
    runner = Runner(
        transport,
        CHANNEL,
        ticket_service.bind(handlers),
        RunOptions(until_empty=True, concurrency=concurrency),
    )
    stats = await runner.run()

    assert sorted(handlers.ids) == [f"good-{i}" for i in range(5)]  # each exactly once
    if concurrency == 1:
        assert handlers.ids == [f"good-{i}" for i in range(5)]
    dead = {d.fields["message_id"]: d for d in await transport.dead_letters(CHANNEL)}
    assert set(dead) in ({"bad-utf8", "too-deep"}, {b"bad-utf8", b"too-deep"})
    reasons = {str(k, "ascii") if isinstance(k, bytes) else k: d.reason for k, d in dead.items()}
    assert reasons["bad-utf8"].startswith("cannot decode 'ticket.create' as CreateTicket: ")
    assert "UnicodeDecodeError" in reasons["bad-utf8"]
    assert "RecursionError" in reasons["too-deep"]
    assert (stats.handled, stats.rejected) == (5, 2)
    if kind == "redis":
        assert await transport.pending_count(CHANNEL, GROUP) == 0


async def test_dead_letters_on_receipt_count_and_stop_on_failure_sees_them(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport(max_message_bytes=1000)
    not_an_envelope = {"routing_key": "ticket.create", "body": "{}"}
    too_large = command("too-large", b"x" * 1001)
    for fields in (not_an_envelope, too_large):
        await transport.add_raw(CHANNEL, fields)
    for i in range(3):
        await transport.add_raw(CHANNEL, command(f"good-{i}", ticket_body(f"ticket {i}")))
    handlers = Memory()
    dispatcher = ticket_service.bind(handlers)

    # Both bad entries come in the first read of 2: it hands out nothing, yet the
    # channel is not empty and the failures count.
    options = RunOptions(stop_on_failure=True, until_empty=True, batch_size=2)
    runner = Runner(transport, CHANNEL, dispatcher, options)
    stats = await runner.run()
    assert runner.reason == "failure"
    assert (stats.rejected, stats.received, stats.handled) == (2, 2, 0)

    runner = Runner(transport, CHANNEL, dispatcher, RunOptions(until_empty=True, batch_size=2))
    stats = await runner.run()
    assert runner.reason == "empty" and handlers.ids == ["good-0", "good-1", "good-2"]
    assert len(await transport.dead_letters(CHANNEL)) == 2


# -- arbitrary bytes through the real Redis consumer ------------------------------------

HEADERS = (
    b"message_id",
    b"routing_key",
    b"kind",
    b"source_service",
    b"target_service",
    b"timestamp",
    b"content_type",
    b"correlation_id",
    b"causation_id",
    b"metadata",
    b"replay_group",
)
PLAUSIBLE: dict[bytes, list[bytes]] = {
    b"message_id": [b"m-1", b"6a1f0c9e2b7d4e5f0000b1a200000001"],
    b"routing_key": [b"ticket.create", b"user.registered", b"order.shipped"],
    b"kind": [b"command", b"event"],
    b"source_service": [b"php_app"],
    b"target_service": [GROUP.encode(), b"billing_service"],
    b"timestamp": [b"1767268800000", b"-1", b"99999999999999999999999"],
    b"content_type": [b"application/json", b"application/json; charset=utf-8", b"text/plain"],
    b"correlation_id": [b"c-1", b""],
    b"causation_id": [b"m-0"],
    b"metadata": [b'{"tenant":"acme"}', b'{"a":1}', b"[" * 5000],
    b"replay_group": [GROUP.encode(), b"other_service"],
}
BODIES = [ticket_body("fine"), BAD_UTF8, TOO_DEEP, b"{}", b"x" * 300_001]


def value_of(name: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(PLAUSIBLE[name]), st.binary(max_size=12))


@st.composite
def entries(draw: st.DrawFn) -> list[bytes]:
    """One stream entry, flat: a well-formed command with a few things changed, or
    headers each present or not; values plausible or arbitrary bytes, extra fields
    (names may repeat known ones), in the publishers' order or any other."""
    pairs: list[tuple[bytes, bytes]]
    if draw(st.booleans()):
        pairs = [
            (k.encode(), v if isinstance(v, bytes) else v.encode())
            for k, v in command("m-1", ticket_body("fine")).items()
        ]
        for _ in range(draw(st.integers(0, 2))):
            index = draw(st.integers(0, len(pairs) - 1))
            name = pairs[index][0]
            if draw(st.booleans()):
                del pairs[index]
            else:
                other = value_of(name) if name in PLAUSIBLE else st.sampled_from(BODIES)
                pairs[index] = (name, draw(st.one_of(other, st.binary(max_size=12))))
            if not pairs:
                break
    else:
        pairs = []
        for name in (*HEADERS, b"body"):
            if draw(st.integers(0, 3)) > 0:
                body = st.one_of(st.sampled_from(BODIES), st.binary(max_size=40))
                pairs.append((name, draw(value_of(name) if name != b"body" else body)))
    extra_names = st.one_of(st.sampled_from([*HEADERS, b"body", b"dlq_reason"]), st.binary())
    pairs += draw(st.lists(st.tuples(extra_names, st.binary(max_size=12)), max_size=2))
    if not pairs:
        pairs.append((b"", b""))
    if draw(st.integers(0, 3)) == 0:
        pairs = draw(st.permutations(pairs))
    return [part for pair in pairs for part in pair]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(entries(), min_size=1, max_size=8), batch_size=st.integers(1, 8))
def test_arbitrary_entries_are_handled_skipped_or_dead_lettered_never_lost(
    redis_server: RedisServer, batch: list[list[bytes]], batch_size: int
) -> None:
    async def scenario() -> None:
        prefix = f"fuzz{uuid.uuid4().hex[:10]}"
        transport = RedisTransport(
            redis_server.url,
            prefix=prefix,
            options=ChannelOptions(max_message_bytes=300_000, visibility_timeout=60),
        )
        try:
            handlers = Memory()
            consumer = Consumer(
                transport, CHANNEL, ticket_service.bind(handlers), batch_size=batch_size
            )
            await consumer.subscription()  # the group exists before the entries
            for flat in batch:
                await xadd_raw(redis_server.url, transport.keys(CHANNEL).stream, flat)
            stats = await consumer.run(until_empty=True)
            await consumer.close()
            dead = len(await transport.dead_letters(CHANNEL))
            assert stats.handled == len(handlers.deliveries)
            assert stats.rejected == dead and stats.failed == stats.retried == 0
            assert stats.handled + stats.skipped + dead == len(batch)
            assert await transport.pending_count(CHANNEL, GROUP) == 0
        finally:
            await transport.close()

    asyncio.run(scenario())
