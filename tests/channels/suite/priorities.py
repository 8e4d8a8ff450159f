"""Priorities (Prioritizes): a consumer with a backlog takes higher priorities first,
equal priorities in the order sent; a message handed back keeps its priority."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.channels.suite.helpers import Features, channel_name, envelope, needs
from toolkit import Envelope, Transport
from toolkit.channels.base import DelayedRetry, Prioritizes

pytestmark = pytest.mark.asyncio

#: the issue's figure: a backlog of this many low-priority messages, then URGENT urgent ones
BACKLOG = 10_000
URGENT = 100
BATCH = 100


def prioritizing(transport: Transport, features: Features) -> Prioritizes:
    needs(features.priorities, "priorities")
    assert isinstance(transport, Prioritizes) and transport.prioritizes_messages
    return transport


async def take(sub: Any, count: int, timeout: float = 10.0) -> list[Any]:
    """Receive and acknowledge up to ``count``, in the order handed out."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = await sub.receive(count - len(got), 0.2)
        await sub.ack(batch)
        got.extend(batch)
    return got


async def backlog(transport: Transport, ch: str, envelopes: list[Envelope]) -> Any:
    """Make the group, send ``envelopes`` while no consumer reads, then open one: a backlog."""
    await (await transport.subscribe(ch, "svc", "c0")).close()
    for start in range(0, len(envelopes), 500):
        await transport.send(ch, envelopes[start : start + 500])
    return await transport.subscribe(ch, "svc", "c1")


async def test_higher_priorities_first_equal_ones_in_order(
    transport: Transport, features: Features
) -> None:
    prioritizing(transport, features)
    ch = channel_name()
    sent = [envelope(body=f'{{"n":{n}}}'.encode(), priority=p) for n, p in
            enumerate([0, 0, 5, 0, 9, 5, 1, 9, 0, 5])]  # fmt: skip
    sub = await backlog(transport, ch, sent)
    got = await take(sub, len(sent))
    expected = sorted(sent, key=lambda e: -e.headers.priority)  # stable: equal ones keep order
    assert [d.message_id for d in got] == [e.headers.message_id for e in expected]
    assert [d.envelope.headers.priority for d in got] == [9, 9, 5, 5, 5, 1, 0, 0, 0, 0]
    await sub.close()


async def test_a_message_handed_back_keeps_its_priority(
    transport: Transport, features: Features, redelivery_wait: float
) -> None:
    """A consumer that closes holding a message hands it back; a retry later waits
    out its delay: either way the message comes back with its priority, ahead of
    lower ones waiting."""
    prioritizing(transport, features)
    ch = channel_name()
    urgent = envelope(priority=7)
    sub = await backlog(transport, ch, [urgent])
    (first,) = await sub.receive(1, 5.0)
    assert first.envelope.headers.priority == 7
    await sub.close()  # unsettled: handed back to the group
    await transport.send(ch, [envelope() for _ in range(5)])
    again_sub = await transport.subscribe(ch, "svc", "c2")
    again = await take(again_sub, 1, timeout=redelivery_wait + 10)
    assert [d.message_id for d in again] == [urgent.headers.message_id]
    assert again[0].envelope.headers.priority == 7
    if features.delayed_retry:
        assert isinstance(again_sub, DelayedRetry)
        retried = envelope(priority=4)
        await transport.send(ch, [retried])
        (held,) = await again_sub.receive(1, 5.0)
        assert held.message_id == retried.headers.message_id
        await again_sub.retry_later(held, 0.2)
        back = {d.message_id: d for d in await take(again_sub, 6, timeout=10)}
        assert back[retried.headers.message_id].envelope.headers.priority == 4
    await again_sub.close()


async def test_urgent_messages_overtake_a_backlog(
    transport: Transport, features: Features, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's test: 10,000 low-priority messages waiting, a consumer taking batches
    of 100; then 100 urgent ones: they are handled within the next two batches."""
    prioritizing(transport, features)
    ch = channel_name()
    low = [envelope(body=b'{"low":1}') for _ in range(BACKLOG)]
    sub = await backlog(transport, ch, low)
    assert len(await take(sub, BATCH)) == BATCH  # the consumer is busy with the backlog
    urgent = [envelope(body=b'{"urgent":1}', priority=9) for _ in range(URGENT)]
    await transport.send(ch, urgent)
    wanted = {e.headers.message_id for e in urgent}
    batches = 0
    position = 0
    last_urgent = 0
    while wanted and batches < 10:
        got = await take(sub, BATCH)
        batches += 1
        for d in got:
            position += 1
            if d.message_id in wanted:
                wanted.discard(d.message_id)
                last_urgent = position
    with capsys.disabled():
        print(
            f"\n[priorities] {type(transport).__name__}: {URGENT} urgent sent behind "
            f"{BACKLOG - BATCH:,} waiting: the last handled at position {last_urgent} "
            f"after they were sent ({batches} batch(es) of {BATCH})"
        )
    assert not wanted, f"{len(wanted)} urgent messages not handled within {batches} batches"
    # A pipe that pushes a batch ahead (AMQP prefetch) has that batch in hand already.
    allowed = 2 + (1 if features.pushes_ahead else 0)
    assert batches <= allowed, f"the urgent messages took {batches} batches, not {allowed}"
    await sub.close()
