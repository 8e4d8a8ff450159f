"""Priorities through the bus: the wire header, the schema default, the override, the
checks, a pipe without them, and a consumer taking its backlog's urgent messages first."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import generated.ticket_service as ticket_service
from generated.service_map import SERVICE_MAP
from generated.user_service import UserServicePublisher, UserServiceSyncPublisher
from generated.user_service.messages import UserRegistered
from tests.plain import PlainTransport
from tests.redis.apps import Memory
from toolkit import (
    Consumer,
    DistributedBus,
    Envelope,
    Headers,
    InMemoryTransport,
    ServiceMap,
    WireError,
)
from toolkit.bus import PrioritiesUnsupportedError, SyncDistributedBus
from toolkit.pipe_settings import Bindings
from toolkit.pipes import Pipes
from toolkit.priority import check_priority


def _headers(**extra: object) -> Headers:
    return Headers("m1", "user.registered", "event", "user_service", 1, **extra)  # type: ignore[arg-type]


@given(st.integers(0, 9))
def test_the_header_round_trips_and_is_left_out_at_0(priority: int) -> None:
    env = Envelope(_headers(priority=priority), b"{}")
    fields = env.to_fields()
    assert ("priority" in fields) == (priority != 0)
    assert Envelope.from_fields(fields).headers.priority == priority


@given(st.text(max_size=4).filter(lambda t: t not in {str(p) for p in range(10)} and t != ""))
def test_any_other_priority_on_the_wire_is_refused(raw: str) -> None:
    fields = {**Envelope(_headers(), b"{}").to_fields(), "priority": raw}
    with pytest.raises(WireError, match="priority must be an integer from 0 to 9"):
        Envelope.from_fields(fields)


@pytest.mark.parametrize("bad", [10, -1, 1.5, "5", True, None])
def test_check_priority_refuses_what_is_not_0_to_9(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="priority must be"):
        check_priority(bad)


def _registered() -> UserRegistered:
    return UserRegistered(
        user_id=uuid.uuid4(), email="a@b.c", full_name="A", registered_at=datetime.now(UTC)
    )


def _with_defaults(**priorities: int) -> ServiceMap:
    return ServiceMap(
        channels=SERVICE_MAP.channels.values(),
        command_routes=SERVICE_MAP.command_routes,
        event_routes=SERVICE_MAP.event_routes,
        commands=SERVICE_MAP.commands,
        events=SERVICE_MAP.events,
        priorities=priorities,
    )


async def test_the_schema_default_applies_and_a_send_overrides_it() -> None:
    memory = InMemoryTransport()
    bus = DistributedBus("user_service", _with_defaults(**{"user.registered": 6}), memory)
    await bus.publish_event("user.registered", _registered())
    await bus.publish_event("user.registered", _registered(), priority=2)
    await bus.publish_event("user.registered", _registered(), priority=0)
    await bus.publish_events("user.registered", [_registered()], priority=9)
    await bus.publish_event_raw("user.registered", b"{}")
    sent = memory.messages("user_events")
    assert [e.headers.priority for e in sent] == [6, 2, 0, 9, 6]


def test_a_service_map_refuses_a_default_out_of_range() -> None:
    with pytest.raises(ValueError, match="priority must be from 0 to 9, not 12"):
        _with_defaults(**{"user.registered": 12})


@pytest.mark.parametrize("bad", [10, -1, "high", 2.0])
async def test_a_bad_priority_is_refused_before_anything_is_sent(bad: object) -> None:
    memory = InMemoryTransport()
    publisher = UserServicePublisher(memory)
    with pytest.raises((TypeError, ValueError), match="priority must be"):
        await publisher.publish_user_registered(_registered(), priority=bad)  # type: ignore[arg-type]
    assert memory.messages("user_events") == []


async def test_a_pipe_without_priorities_refuses_them_and_sends_nothing() -> None:
    transport = PlainTransport()
    bus = DistributedBus("user_service", SERVICE_MAP, transport)
    with pytest.raises(PrioritiesUnsupportedError, match="cannot order messages by priority"):
        await bus.publish_event("user.registered", _registered(), priority=3)
    defaulted = DistributedBus("user_service", _with_defaults(**{"user.registered": 4}), transport)
    with pytest.raises(PrioritiesUnsupportedError):
        await defaulted.publish_event("user.registered", _registered())
    assert transport.sent == []
    await defaulted.publish_event("user.registered", _registered(), priority=0)
    assert len(transport.sent) == 1


async def test_pipes_refuse_per_channel() -> None:
    memory, plain = InMemoryTransport(), PlainTransport()
    pipes = Pipes(
        Bindings(
            pipes={"default": "memory://a", "plain": "memory://b"},
            channels={"user_events": "plain"},
        ),
        transports={"default": memory, "plain": plain},  # type: ignore[dict-item]
    )
    publisher = UserServicePublisher(pipes)
    with pytest.raises(PrioritiesUnsupportedError, match="'user_events' is on pipe 'plain'"):
        await publisher.publish_user_registered(_registered(), priority=5)
    assert plain.sent == []


def test_the_sync_publisher_sets_priorities() -> None:
    memory = InMemoryTransport()
    publisher = UserServiceSyncPublisher(SyncDistributedBus("user_service", SERVICE_MAP, memory))
    publisher.publish_user_registered(_registered(), priority=8)
    assert [e.headers.priority for e in memory.messages("user_events")] == [8]


async def test_a_consumer_handles_its_backlogs_urgent_messages_first() -> None:
    """Through the generated publisher and the consumer: what waits is handled by priority."""
    memory = InMemoryTransport()
    publisher = UserServicePublisher(memory)
    app = Memory()
    consumer = Consumer(memory, "user_events", ticket_service.bind(app))
    await consumer.subscription()  # the group exists: what follows waits for it
    low = [await publisher.publish_user_registered(_registered()) for _ in range(5)]
    urgent = await publisher.publish_user_registered(_registered(), priority=9)
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(5):
            while len(app.ids) < 6:
                await asyncio.sleep(0.01)
    finally:
        consumer.stop()
        await task
        await consumer.close()
    assert app.ids[0] == urgent.message_id
    assert app.ids[1:] == [r.message_id for r in low]
