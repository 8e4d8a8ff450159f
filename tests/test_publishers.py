"""Generated publishers: built from a transport or a bus of their own service, nothing else."""

from __future__ import annotations

import datetime
import inspect
import uuid
from collections.abc import Sequence

import pytest

from generated.service_map import SERVICE_MAP
from generated.ticket_service import CreateTicket, TicketServicePublisher
from generated.user_service import (
    UserRegistered,
    UserServicePublisher,
    UserServiceSyncPublisher,
)
from toolkit import DistributedBus, Envelope, InMemoryTransport, SyncDistributedBus, TransportError
from toolkit.testing import InMemorySystem


def _command() -> CreateTicket:
    return CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="a@b.c")


async def test_a_publisher_builds_its_own_bus_from_a_transport() -> None:
    transport = InMemoryTransport()
    users = UserServicePublisher(transport)
    assert users.bus.service == "user_service" and users.bus.service_map is SERVICE_MAP
    await users.send_ticket_create(_command(), metadata={"tenant": "t"})
    [sent] = transport.messages("ticket_commands")
    assert sent.headers.source_service == "user_service"
    assert sent.headers.metadata == {"tenant": "t"}


def test_the_sync_publisher_builds_its_own_bus_from_a_sync_transport() -> None:
    transport = InMemoryTransport()
    UserServiceSyncPublisher(transport).send_ticket_create(_command())
    [sent] = transport.messages("ticket_commands")
    assert sent.headers.source_service == "user_service"


async def test_a_bus_of_its_own_service_is_used_as_it_is() -> None:
    system = InMemorySystem(SERVICE_MAP)
    bus = system.bus("user_service")
    assert UserServicePublisher(bus).bus is bus
    sync_bus = system.sync_bus("user_service")
    assert UserServiceSyncPublisher(sync_bus).bus is sync_bus


def test_a_bus_of_another_service_is_refused_naming_both() -> None:
    transport = InMemoryTransport()
    with pytest.raises(ValueError, match=r"'user_service'.*'ticket_service'"):
        UserServicePublisher(DistributedBus("ticket_service", SERVICE_MAP, transport))
    with pytest.raises(ValueError, match=r"'ticket_service'.*'user_service'"):
        TicketServicePublisher(DistributedBus("user_service", SERVICE_MAP, transport))
    with pytest.raises(ValueError, match=r"'user_service'.*'ticket_service'"):
        UserServiceSyncPublisher(SyncDistributedBus("ticket_service", SERVICE_MAP, transport))


def test_a_bus_of_the_other_flavour_is_refused() -> None:
    transport = InMemoryTransport()
    with pytest.raises(TypeError, match="needs a SyncDistributedBus or a transport"):
        UserServiceSyncPublisher(DistributedBus("user_service", SERVICE_MAP, transport))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a DistributedBus or a transport"):
        UserServicePublisher(SyncDistributedBus("user_service", SERVICE_MAP, transport))  # type: ignore[arg-type]


async def test_metadata_caused_by_and_message_id_are_keyword_only() -> None:
    for publisher in (UserServicePublisher, UserServiceSyncPublisher, TicketServicePublisher):
        for name, method in inspect.getmembers(publisher, inspect.isfunction):
            if name.startswith(("send_", "publish_")):
                params = inspect.signature(method).parameters
                for keyword in ("metadata", "caused_by", "message_id"):
                    assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY, name
                    assert params[keyword].default is None, name
    users = UserServicePublisher(InMemoryTransport())
    with pytest.raises(TypeError):
        await users.send_ticket_create(_command(), {"tenant": "t"})  # type: ignore[call-arg]


def test_running_a_service_that_consumes_nothing_says_so() -> None:
    """user_service has no handlers.py, so no bind(): ``toolkit run`` explains why."""
    from toolkit.commands._app import AppError, bind_app

    with pytest.raises(AppError, match="user_service consumes nothing"):
        bind_app(object(), "user_service", "generated")


class StoresThenLosesTheReply(InMemoryTransport):
    """Stores what it is sent, then fails the first send: the sender cannot tell it was stored."""

    def __init__(self) -> None:
        super().__init__()
        self.replies_lost = 1

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        await super().send(channel, envelopes)
        self._lose_reply()

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        super().send_sync(channel, envelopes)
        self._lose_reply()

    def _lose_reply(self) -> None:
        if self.replies_lost:
            self.replies_lost -= 1
            raise TransportError("connection reset before the reply")


async def test_a_resend_with_the_callers_message_id_is_recognizable_downstream() -> None:
    # The id derived from the caller's own request id: every attempt gets the same one.
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://shop.example/requests/42"))
    transport = StoresThenLosesTheReply()
    users = UserServicePublisher(transport)
    with pytest.raises(TransportError):
        await users.send_ticket_create(_command(), message_id=message_id)
    assert await users.send_ticket_create(_command(), message_id=message_id) == message_id
    assert [e.headers.message_id for e in transport.messages("ticket_commands")] == [
        message_id,
        message_id,
    ]
    transport.replies_lost = 1
    event = UserRegistered(
        user_id=uuid.uuid4(),
        email="a@b.c",
        full_name="A",
        registered_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )
    sync_users = UserServiceSyncPublisher(transport)
    with pytest.raises(TransportError):
        sync_users.publish_user_registered(event, message_id="signup-42")
    assert sync_users.publish_user_registered(event, message_id="signup-42").message_id == (
        "signup-42"
    )
    assert [e.headers.message_id for e in transport.messages("user_events")] == [
        "signup-42",
        "signup-42",
    ]
