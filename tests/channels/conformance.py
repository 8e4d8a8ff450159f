"""The behaviour every channel transport must show (see toolkit/channels/base.py).

A transport's test module star-imports these tests and provides fixtures:

* ``transport``: an open Transport with empty channels, closed afterwards;
* ``add_raw``: ``async (channel, fields) -> None`` appending raw wire fields as
  another language would;
* ``redelivery_wait``: seconds after which a crashed consumer's pending
  messages can be received again by another consumer of the group (0 for
  in-memory; the visibility timeout for Redis).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from toolkit import DeadLetterStore, Envelope, Headers, Transport, new_message_id

AddRaw = Callable[[str, dict[str, Any]], Awaitable[None]]

pytestmark = pytest.mark.asyncio


def envelope(key: str = "user.registered", body: bytes = b'{"n":1}', **headers: Any) -> Envelope:
    message_id = new_message_id()
    # As the bus does: a message that starts a conversation is its own correlation.
    headers.setdefault("correlation_id", message_id)
    return Envelope(
        Headers(
            message_id=message_id,
            routing_key=key,
            kind=headers.pop("kind", "event"),
            source_service=headers.pop("source_service", "user_service"),
            timestamp_ms=int(time.time() * 1000),
            **headers,
        ),
        body,
    )


def channel_name() -> str:
    return f"conf-{uuid.uuid4().hex[:8]}"


async def receive_all(sub: Any, count: int, timeout: float = 5.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(await sub.receive(count - len(got), 0.2))
    return got


async def test_messages_arrive_in_order_with_headers_and_body(transport: Transport) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    sent = [envelope(body=f'{{"n":{i}}}'.encode(), metadata={"tenant": "t1"}) for i in range(5)]
    await transport.send(ch, sent)
    got = await receive_all(sub, 5)
    assert [d.envelope for d in got] == sent
    assert all(d.delivery_count == 1 and d.channel == ch for d in got)
    await sub.ack(got)
    await sub.close()


async def test_group_created_late_starts_at_the_beginning(transport: Transport) -> None:
    ch = channel_name()
    first = envelope()
    await transport.send(ch, [first])
    sub = await transport.subscribe(ch, "late_group", "c1")
    got = await receive_all(sub, 1)
    assert [d.message_id for d in got] == [first.headers.message_id]
    await sub.ack(got)
    await sub.close()


async def test_each_group_sees_every_message(transport: Transport) -> None:
    ch = channel_name()
    a = await transport.subscribe(ch, "group_a", "c1")
    b = await transport.subscribe(ch, "group_b", "c1")
    sent = [envelope() for _ in range(10)]
    await transport.send(ch, sent)
    for sub in (a, b):
        got = await receive_all(sub, 10)
        assert [d.message_id for d in got] == [e.headers.message_id for e in sent]
        await sub.ack(got)
        await sub.close()


async def test_consumers_of_one_group_share_the_work(transport: Transport) -> None:
    ch = channel_name()
    one = await transport.subscribe(ch, "svc", "c1")
    two = await transport.subscribe(ch, "svc", "c2")
    sent = [envelope() for _ in range(40)]
    await transport.send(ch, sent)
    first = list(await one.receive(20, 1.0))
    second = await receive_all(two, 40 - len(first))
    ids_one = {d.message_id for d in first}
    ids_two = {d.message_id for d in second}
    assert not ids_one & ids_two
    assert ids_one | ids_two == {e.headers.message_id for e in sent}
    await one.ack(first)
    await two.ack(second)
    await one.close()
    await two.close()


async def test_acknowledged_messages_are_not_delivered_again(
    transport: Transport, redelivery_wait: float
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await transport.send(ch, [envelope() for _ in range(3)])
    got = await receive_all(sub, 3)
    await sub.ack(got)
    await sub.close()
    await asyncio.sleep(redelivery_wait)
    again = await transport.subscribe(ch, "svc", "c2")
    assert list(await again.receive(10, 0.3)) == []
    await again.close()


async def test_unacknowledged_messages_go_to_another_consumer_after_a_crash(
    transport: Transport, redelivery_wait: float
) -> None:
    ch = channel_name()
    crashed = await transport.subscribe(ch, "svc", "crashed")
    sent = [envelope() for _ in range(3)]
    await transport.send(ch, sent)
    taken = await receive_all(crashed, 3)
    assert len(taken) == 3
    await crashed.close()  # never acknowledged
    await asyncio.sleep(redelivery_wait)
    survivor = await transport.subscribe(ch, "svc", "survivor")
    got = await receive_all(survivor, 3, timeout=5 + redelivery_wait * 4)
    assert sorted(d.message_id for d in got) == sorted(e.headers.message_id for e in sent)
    assert all(d.delivery_count >= 2 for d in got)
    await survivor.ack(got)
    await survivor.close()


async def test_rejected_messages_are_dead_lettered_with_the_reason(
    transport: Transport, redelivery_wait: float
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    bad, good = envelope(), envelope()
    await transport.send(ch, [bad, good])
    got = await receive_all(sub, 2)
    await sub.reject(got[0], "cannot decode: Expected `int`, got `str`")
    await sub.ack(got[1:])
    await sub.close()
    assert isinstance(transport, DeadLetterStore)
    dead = await transport.dead_letters(ch)
    assert len(dead) == 1
    assert dead[0].reason == "cannot decode: Expected `int`, got `str`"
    assert dead[0].group == "svc"
    assert (
        dead[0].envelope is not None
        and dead[0].envelope.headers.message_id == bad.headers.message_id
    )
    await asyncio.sleep(redelivery_wait)
    again = await transport.subscribe(ch, "svc", "c2")
    assert list(await again.receive(10, 0.3)) == []
    await again.close()


async def test_dead_letters_can_be_filtered_replayed_and_purged(transport: Transport) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    a, b = envelope("user.registered"), envelope("user.deleted")
    await transport.send(ch, [a, b])
    got = await receive_all(sub, 2)
    for d in got:
        await sub.reject(d, "boom")
    assert isinstance(transport, DeadLetterStore)
    only_deleted = await transport.dead_letters(ch, routing_key="user.deleted")
    assert [d.envelope.headers.routing_key for d in only_deleted if d.envelope] == ["user.deleted"]
    assert len(await transport.dead_letters(ch, count=1)) == 1
    replayed = await transport.replay(ch, [only_deleted[0].dead_letter_id])
    assert replayed == 1
    back = await receive_all(sub, 1)
    assert back[0].message_id == b.headers.message_id
    assert back[0].delivery_count == 1
    await sub.ack(back)
    remaining = await transport.dead_letters(ch)
    assert [d.envelope.headers.routing_key for d in remaining if d.envelope] == ["user.registered"]
    assert await transport.purge(ch) == 1
    assert await transport.dead_letters(ch) == []
    await sub.close()


async def test_receive_waits_at_most_the_timeout(transport: Transport) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    start = time.monotonic()
    assert list(await sub.receive(10, 0.3)) == []
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 2.0
    await sub.close()


async def test_receive_wakes_up_when_a_message_arrives(transport: Transport) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    waiting = asyncio.ensure_future(sub.receive(10, 5.0))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await transport.send(ch, [envelope()])
    got = await waiting
    assert len(got) == 1
    assert time.monotonic() - start < 2.0
    await sub.ack(got)
    await sub.close()


async def test_receive_returns_at_most_max_count(transport: Transport) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    sent = [envelope() for _ in range(25)]
    await transport.send(ch, sent)
    batches = []
    while sum(len(b) for b in batches) < 25:
        batch = list(await sub.receive(10, 1.0))
        assert 0 < len(batch) <= 10
        batches.append(batch)
        await sub.ack(batch)
    assert [d.message_id for b in batches for d in b] == [e.headers.message_id for e in sent]
    await sub.close()


async def test_invalid_raw_entries_are_dead_lettered_not_returned(
    transport: Transport, add_raw: AddRaw
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await add_raw(
        ch, {"routing_key": "user.registered", "body": "{}"}
    )  # no message_id, kind, source
    good = envelope()
    await transport.send(ch, [good])
    got = await receive_all(sub, 1)
    assert [d.message_id for d in got] == [good.headers.message_id]
    await sub.ack(got)
    assert isinstance(transport, DeadLetterStore)
    dead = await transport.dead_letters(ch)
    assert len(dead) == 1 and dead[0].envelope is None
    assert "missing header field" in dead[0].reason
    await sub.close()


async def test_hand_written_wire_entry_is_received_as_an_envelope(
    transport: Transport, add_raw: AddRaw
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await add_raw(
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
