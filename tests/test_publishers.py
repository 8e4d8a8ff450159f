"""Generated publishers: built from a transport or a bus of their own service, nothing else."""

from __future__ import annotations

import inspect
import uuid

import pytest

from generated.service_map import SERVICE_MAP
from generated.ticket_service import CreateTicket, TicketServicePublisher
from generated.user_service import UserServicePublisher, UserServiceSyncPublisher
from toolkit import DistributedBus, InMemoryTransport, SyncDistributedBus
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


async def test_metadata_and_caused_by_are_keyword_only() -> None:
    for publisher in (UserServicePublisher, UserServiceSyncPublisher, TicketServicePublisher):
        for name, method in inspect.getmembers(publisher, inspect.isfunction):
            if name.startswith(("send_", "publish_")):
                params = inspect.signature(method).parameters
                assert params["metadata"].kind is inspect.Parameter.KEYWORD_ONLY, name
                assert params["caused_by"].kind is inspect.Parameter.KEYWORD_ONLY, name
    users = UserServicePublisher(InMemoryTransport())
    with pytest.raises(TypeError):
        await users.send_ticket_create(_command(), {"tenant": "t"})  # type: ignore[call-arg]


def test_running_a_service_that_consumes_nothing_says_so() -> None:
    """user_service has no handlers.py, so no bind(): ``toolkit run`` explains why."""
    from toolkit.commands._app import AppError, bind_app

    with pytest.raises(AppError, match="user_service consumes nothing"):
        bind_app(object(), "user_service", "generated")
