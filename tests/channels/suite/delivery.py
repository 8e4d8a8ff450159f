"""Core promises: order, groups, shared work, acknowledgement, redelivery, receive timing."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.channels.suite.helpers import Features, channel_name, envelope, receive_all
from toolkit import Transport

pytestmark = pytest.mark.asyncio


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


async def test_consumers_of_one_group_share_the_work(
    transport: Transport, features: Features
) -> None:
    ch = channel_name()
    one = await transport.subscribe(ch, "svc", "c1")
    two = await transport.subscribe(ch, "svc", "c2")
    sent = [envelope() for _ in range(40)]
    await transport.send(ch, sent)
    first = list(await one.receive(20, 1.0))
    if features.pushes_ahead:
        # What ``one`` was pushed beyond ``first`` is its until it leaves.
        await one.ack(first)
        await one.close()
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
