"""Messages travel in their wire form: what it cannot carry fails to send, what it cannot
read back is dead-lettered with the reason, what it alters arrives altered, bodies over the
limit are dead-lettered as too large, and hand-written entries are read like any other."""

from __future__ import annotations

from typing import Any

import pytest

from tests.channels.suite.helpers import (
    MESSAGE_LIMIT,
    AddRaw,
    channel_name,
    envelope,
    receive_all,
)
from toolkit import DeadLetterStore, Envelope, Transport, WireError

pytestmark = pytest.mark.asyncio


def as_stored(sent: Envelope) -> dict[str, bytes]:
    """What a transport keeps of ``sent``: its wire fields, every value as bytes."""
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in sent.to_fields().items()}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"correlation_id": ""}, id="empty correlation id"),
        pytest.param({"metadata": {1: "a"}}, id="metadata key not a string"),
        pytest.param({"metadata": None}, id="metadata None"),
        pytest.param({"target_service": "x"}, id="event with a target"),
        pytest.param({"content_type": "", "causation_id": "c"}, id="empty content type"),
    ],
)
async def test_a_message_arrives_as_the_wire_reads_it_back(
    transport: Transport, headers: dict[str, Any]
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    sent = envelope(**headers)
    await transport.send(ch, [sent])
    [got] = await receive_all(sub, 1)
    assert got.envelope == Envelope.from_fields(as_stored(sent))
    await sub.ack([got])
    await sub.close()


async def test_a_body_that_is_not_bytes_arrives_as_bytes(transport: Transport) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await transport.send(ch, [envelope(body=bytearray(b'{"n":1}'))])  # type: ignore[arg-type]
    [got] = await receive_all(sub, 1)
    assert type(got.envelope.body) is bytes and got.envelope.body == b'{"n":1}'
    await sub.ack([got])
    await sub.close()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"metadata": {"n": 1}}, id="metadata value not a string"),
        pytest.param({"metadata": {"a": None}}, id="metadata value null"),
        pytest.param({"kind": "command"}, id="command without a target"),
        pytest.param({"message_id": ""}, id="empty message id"),
        pytest.param({"source_service": ""}, id="empty source"),
    ],
)
async def test_a_message_the_wire_cannot_read_back_is_dead_lettered_with_the_reason(
    transport: Transport, store: DeadLetterStore, headers: dict[str, Any]
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    bad, good = envelope(**headers), envelope()
    await transport.send(ch, [bad, good])
    got = await receive_all(sub, 1)
    assert [d.message_id for d in got] == [good.headers.message_id]
    await sub.ack(got)
    with pytest.raises(WireError) as expected:
        Envelope.from_fields(as_stored(bad))
    [dead] = await store.dead_letters(ch)
    assert dead.reason == f"invalid envelope: {expected.value}"
    assert (dead.group, dead.envelope, dead.fields) == ("svc", None, as_stored(bad))
    await sub.close()


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param({"key": "user.\ud800"}, UnicodeEncodeError, id="lone surrogate"),
        pytest.param({"key": 5}, AttributeError, id="routing key not a string"),
        pytest.param({"body": "{}"}, TypeError, id="body a string"),
        pytest.param({"timestamp_ms": "now"}, TypeError, id="timestamp a string"),
    ],
)
async def test_a_message_the_wire_cannot_carry_fails_to_send_and_nothing_is_stored(
    transport: Transport, headers: dict[str, Any], error: type[Exception]
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    with pytest.raises(error):
        await transport.send(ch, [envelope(), envelope(**headers)])
    assert list(await sub.receive(10, 0.3)) == []
    after = envelope()
    await transport.send(ch, [after])
    got = await receive_all(sub, 1)
    assert [d.message_id for d in got] == [after.headers.message_id]
    await sub.ack(got)
    await sub.close()


@pytest.mark.parametrize("metadata", [{}, {"tenant": "t1"}], ids=["plain", "with metadata"])
async def test_a_body_over_the_limit_is_dead_lettered_as_too_large(
    transport: Transport, store: DeadLetterStore, metadata: dict[str, str]
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    largest = envelope(body=b"x" * MESSAGE_LIMIT, metadata=metadata)
    too_large = envelope(body=b"x" * (MESSAGE_LIMIT + 1), metadata=metadata)
    await transport.send(ch, [too_large, largest])
    got = await receive_all(sub, 1)
    assert [d.message_id for d in got] == [largest.headers.message_id]
    await sub.ack(got)
    [dead] = await store.dead_letters(ch)
    assert dead.reason == (
        f"message too large: body is {MESSAGE_LIMIT + 1} bytes, "
        f"the channel's limit is {MESSAGE_LIMIT}"
    )
    assert dead.envelope == too_large and dead.fields == as_stored(too_large)
    await sub.close()


async def test_invalid_raw_entries_are_dead_lettered_not_returned(
    transport: Transport, store: DeadLetterStore, write_raw: AddRaw
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await write_raw(ch, {"routing_key": "user.registered", "body": "{}"})  # no id, kind, source
    good = envelope()
    await transport.send(ch, [good])
    got = await receive_all(sub, 1)
    assert [d.message_id for d in got] == [good.headers.message_id]
    await sub.ack(got)
    dead = await store.dead_letters(ch)
    assert len(dead) == 1 and dead[0].envelope is None
    assert dead[0].reason == (
        "invalid envelope: missing header field(s): message_id, kind, source_service"
    )
    assert dead[0].fields == {"routing_key": b"user.registered", "body": b"{}"}
    await sub.close()


async def test_hand_written_wire_entry_is_received_as_an_envelope(
    transport: Transport, write_raw: AddRaw
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await write_raw(
        ch,
        {
            "message_id": "ext-1",
            "routing_key": "ticket.create",
            "kind": "command",
            "source_service": "php_app",
            "target_service": "ticket_service",
            "body": '{"subject":"hi"}',
        },
    )
    got = await receive_all(sub, 1)
    h = got[0].envelope.headers
    assert (h.message_id, h.kind, h.source_service, h.target_service) == (
        "ext-1",
        "command",
        "php_app",
        "ticket_service",
    )
    assert h.correlation_id == "ext-1" and h.content_type == "application/json"
    assert got[0].envelope.body == b'{"subject":"hi"}'
    await sub.ack(got)
    await sub.close()
