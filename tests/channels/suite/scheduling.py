"""Scheduled messages (Schedules): a message with a due time stays invisible until then,
joins the channel (every group of it) once due whether or not a consumer was running,
can be listed and cancelled by id before it is due (``Features.lists_scheduled``; else
both are refused with a clear error), and outlives the consumers that were waiting."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import generated.ticket_service as ticket_service
from generated.ticket_service.messages import CreateTicket
from generated.user_service import UserServicePublisher
from tests.channels.suite.helpers import Features, channel_name, envelope, needs
from tests.redis.apps import Memory
from toolkit import Consumer, Envelope, Transport
from toolkit.channels.base import Schedules
from toolkit.scheduling import ScheduledUnlistedError

pytestmark = pytest.mark.asyncio

#: how far ahead the tests schedule: long enough to look before it is due on a busy machine
AHEAD = 1.0


def scheduling(transport: Transport, features: Features) -> Schedules:
    needs(features.scheduling, "scheduled messages")
    assert isinstance(transport, Schedules) and transport.schedules_messages
    return transport


def listing(transport: Transport, features: Features) -> Schedules:
    """The transport as a Schedules that lists and cancels (the test is skipped else)."""
    scheduler = scheduling(transport, features)
    needs(features.lists_scheduled, "listing and cancelling scheduled messages")
    return scheduler


async def take(sub: Any, count: int, timeout: float) -> list[Any]:
    """Receive and acknowledge (a lease must not run out meanwhile) up to ``count``."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = await sub.receive(count - len(got), 0.1)
        await sub.ack(batch)
        got.extend(batch)
    return got


def create_ticket(n: int) -> CreateTicket:
    return CreateTicket(ticket_id=uuid.uuid4(), subject=f"ticket {n}", requester_email="a@b.c")


def due_in(seconds: float, **headers: Any) -> Envelope:
    return envelope(deliver_at_ms=int((time.time() + seconds) * 1000), **headers)


async def test_not_before_it_is_due_and_delivered_once_due(
    transport: Transport, features: Features
) -> None:
    scheduler = scheduling(transport, features)
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    later, now = due_in(AHEAD), envelope()
    await transport.send(ch, [later, now])
    first = await take(sub, 2, timeout=AHEAD * 0.5)
    assert [d.message_id for d in first] == [now.headers.message_id]
    if features.lists_scheduled:
        waiting = await scheduler.scheduled(ch)
        assert [(s.message_id, s.deliver_at_ms) for s in waiting] == [
            (later.headers.message_id, later.headers.deliver_at_ms)
        ]
        assert waiting[0].envelope == later
    got = await take(sub, 1, timeout=AHEAD + 5)
    received_at = time.time() * 1000
    assert [d.message_id for d in got] == [later.headers.message_id]
    assert received_at >= later.headers.deliver_at_ms
    assert got[0].envelope == later
    if features.lists_scheduled:
        assert await scheduler.scheduled(ch) == []
    await sub.close()


async def test_every_group_gets_it_once_due(transport: Transport, features: Features) -> None:
    scheduling(transport, features)
    ch = channel_name()
    subs = [await transport.subscribe(ch, group, "c1") for group in ("svc", "other")]
    sent = [due_in(AHEAD * 0.5), due_in(AHEAD * 0.25), envelope()]
    await transport.send(ch, sent)
    for sub in subs:
        got = await take(sub, 3, timeout=AHEAD + 5)
        assert sorted(d.message_id for d in got) == sorted(e.headers.message_id for e in sent)
        assert all(time.time() * 1000 >= d.envelope.headers.deliver_at_ms for d in got)
        await sub.close()


async def test_listing_and_cancelling_refused_clearly_where_they_cannot_be(
    transport: Transport, features: Features
) -> None:
    scheduler = scheduling(transport, features)
    if features.lists_scheduled:
        pytest.skip("the transport lists and cancels scheduled messages")
    assert getattr(transport, "lists_scheduled", True) is False
    for call in (scheduler.scheduled("ch"), scheduler.cancel_scheduled("ch", ["m1"])):
        with pytest.raises(ScheduledUnlistedError, match=r"cannot list or cancel .*docs/"):
            await call


async def test_a_due_time_in_the_past_means_at_once(
    transport: Transport, features: Features
) -> None:
    scheduling(transport, features)
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    past = due_in(-60)
    await transport.send(ch, [past])
    got = await take(sub, 1, timeout=2)
    assert [d.message_id for d in got] == [past.headers.message_id]
    await sub.close()


async def test_cancelled_before_due_is_never_delivered(
    transport: Transport, features: Features
) -> None:
    scheduler = listing(transport, features)
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    kept, cancelled = due_in(AHEAD * 0.5), due_in(AHEAD * 0.5)
    await transport.send(ch, [kept, cancelled])
    ids = [cancelled.headers.message_id, "no-such-id"]
    assert await scheduler.cancel_scheduled(ch, ids) == 1
    assert [s.message_id for s in await scheduler.scheduled(ch)] == [kept.headers.message_id]
    got = await take(sub, 2, timeout=AHEAD + 2)
    assert [d.message_id for d in got] == [kept.headers.message_id]
    # Delivered: no longer cancellable.
    assert await scheduler.cancel_scheduled(ch, [kept.headers.message_id]) == 0
    await sub.close()


async def test_scheduled_again_with_the_same_id_replaces_the_waiting_one(
    transport: Transport, features: Features
) -> None:
    scheduler = listing(transport, features)
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    first = due_in(AHEAD * 3, body=b'{"n":1}')
    again = due_in(AHEAD * 0.5, message_id=first.headers.message_id, body=b'{"n":2}')
    await transport.send(ch, [first])
    await transport.send(ch, [again])
    waiting = await scheduler.scheduled(ch)
    assert [(s.message_id, s.deliver_at_ms) for s in waiting] == [
        (again.headers.message_id, again.headers.deliver_at_ms)
    ]
    got = await take(sub, 2, timeout=AHEAD + 2)
    assert [d.envelope for d in got] == [again]
    assert await scheduler.scheduled(ch) == []
    await sub.close()


async def test_delivered_once_due_though_no_consumer_ran_meanwhile(
    transport: Transport, features: Features
) -> None:
    scheduling(transport, features)
    ch = channel_name()
    waiting = await transport.subscribe(ch, "svc", "c1")
    sent = due_in(AHEAD * 0.3)
    await transport.send(ch, [sent])
    assert await waiting.receive(1, 0.05) == []
    await waiting.close()  # every consumer gone before it is due
    await asyncio.sleep(AHEAD * 0.3 + 0.1)
    # A new consumer of the group, and a group that did not exist yet, both get it
    # (the latter only where a group made later sees what was sent before).
    subs = [await transport.subscribe(ch, "svc", "c2")]
    if features.late_groups_see_history:
        subs.append(await transport.subscribe(ch, "other", "c1"))
    for sub in subs:
        got = await take(sub, 1, timeout=5)
        assert [d.message_id for d in got] == [sent.headers.message_id]
        await sub.close()


async def test_the_generated_publisher_schedules(transport: Transport, features: Features) -> None:
    scheduler = scheduling(transport, features)
    channel = "ticket_commands"
    handlers = Memory()
    consumer = Consumer(transport, channel, ticket_service.bind(handlers))
    publisher = UserServicePublisher(transport)
    start = time.time()
    by_delay = await publisher.send_ticket_create(create_ticket(1), delay=timedelta(seconds=AHEAD))
    at = datetime.fromtimestamp(start + AHEAD * 0.5, UTC)
    by_time = await publisher.send_ticket_create(create_ticket(2), deliver_at=at)
    if features.lists_scheduled:
        assert {s.message_id for s in await scheduler.scheduled(channel)} == {by_delay, by_time}
    assert (await consumer.run(until_empty=True)).handled == 0
    deadline = time.monotonic() + AHEAD + 5
    while len(handlers.ids) < 2 and time.monotonic() < deadline:
        await consumer.run(until_empty=True)
    await consumer.close()
    assert handlers.ids == [by_time, by_delay]
    dues = [d.envelope.headers.deliver_at_ms for d in handlers.deliveries]
    assert dues[1] >= int((start + AHEAD) * 1000) - 1 and time.time() * 1000 >= max(dues)
