"""The scheduling API of the bus: delay= / deliver_at=, their checks, and a pipe without them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from generated.service_map import SERVICE_MAP
from generated.user_service import UserServiceSyncPublisher
from generated.user_service.messages import UserRegistered
from tests.plain import PlainTransport
from toolkit import DistributedBus, InMemoryTransport
from toolkit.bus import SchedulingUnsupportedError, SyncDistributedBus
from toolkit.pipe_settings import Bindings
from toolkit.pipes import Pipes
from toolkit.scheduling import due_ms


def test_a_delay_is_from_now_and_deliver_at_is_the_instant() -> None:
    before = time.time() * 1000
    assert before + 1500 - 1 <= due_ms(timedelta(seconds=1.5), None) <= time.time() * 1000 + 1500
    assert before + 2000 - 1 <= due_ms(2, None) <= time.time() * 1000 + 2000
    at = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    assert due_ms(None, at) == int(at.timestamp() * 1000)
    assert due_ms(None, None) == 0


@pytest.mark.parametrize(
    ("delay", "deliver_at", "error"),
    [
        (1.0, datetime.now(UTC), "not both"),
        (None, datetime(2030, 1, 1), "timezone-aware"),
        (-1.0, None, "negative"),
        (float("nan"), None, "negative"),
    ],
)
def test_bad_due_times_are_refused(
    delay: float | None, deliver_at: datetime | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        due_ms(delay, deliver_at)


def _registered() -> UserRegistered:
    return UserRegistered(
        user_id=uuid.uuid4(), email="a@b.c", full_name="A", registered_at=datetime.now(UTC)
    )


async def test_a_pipe_without_scheduling_refuses_a_due_time_and_sends_nothing() -> None:
    transport = PlainTransport()
    bus = DistributedBus("user_service", SERVICE_MAP, transport)
    body = _registered()
    with pytest.raises(SchedulingUnsupportedError, match="cannot schedule messages"):
        await bus.publish_event("user.registered", body, delay=5)
    assert transport.sent == []
    await bus.publish_event("user.registered", body)  # without a due time: sent
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
    bus = DistributedBus("user_service", SERVICE_MAP, pipes)
    body = _registered()
    with pytest.raises(SchedulingUnsupportedError, match="'user_events' is on pipe 'plain'"):
        await bus.publish_event("user.registered", body, delay=5)


def test_the_sync_publisher_schedules() -> None:
    memory = InMemoryTransport()
    publisher = UserServiceSyncPublisher(SyncDistributedBus("user_service", SERVICE_MAP, memory))
    from generated.ticket_service.messages import CreateTicket

    message_id = publisher.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="a@b.c"),
        delay=timedelta(minutes=5),
    )
    assert memory.messages("ticket_commands") == []
    ch = memory._channels["ticket_commands"]
    assert list(ch.scheduled) == [message_id]
