"""The relay inside a service: an App's startup runs it as a task on the host's transport."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from generated.service_map import SERVICE_MAP
from generated.ticket_service import (
    CreateTicket,
    CustomerPlanChanged,
    NewCustomer,
    TicketServicePublisher,
    bind,
)
from generated.user_service import UserRegistered, UserServiceSyncPublisher
from toolkit import App, Delivery, Dispatcher, HostContext
from toolkit.outbox import Relay, outbox_for
from toolkit.testing import InMemorySystem


class Tickets:
    def __init__(self) -> None:
        self.customers: list[str] = []

    def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:
        pass

    def on_user_billing_changed(self, message: CustomerPlanChanged, meta: Delivery) -> None:
        pass

    def on_user_registered(self, message: NewCustomer, meta: Delivery) -> None:
        self.customers.append(message.email)


async def test_an_app_relays_its_outbox_while_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    tickets = Tickets()
    relays: list[Relay] = []

    @contextlib.asynccontextmanager
    async def handlers(ctx: HostContext[TicketServicePublisher]) -> AsyncIterator[Dispatcher]:
        relay = Relay(f"sqlite:///{path}", ctx.transport, poll_interval=0.01)
        relays.append(relay)
        async with relay.running():
            yield bind(tickets)

    system = InMemorySystem(SERVICE_MAP)
    await system.start(App("ticket_service", TicketServicePublisher, handlers))
    conn = sqlite3.connect(path)
    event = UserRegistered(
        user_id=uuid.uuid4(),
        email="ann@example.com",
        full_name="Ann",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    UserServiceSyncPublisher(outbox_for(conn)).publish_user_registered(event)
    conn.commit()
    conn.close()
    async with asyncio.timeout(10):
        while relays[0].stats.relayed < 1:
            await asyncio.sleep(0.01)
    await system.run("ticket_service")
    assert tickets.customers == ["ann@example.com"]
    await system.close()  # the App's shutdown stops the relay
    assert relays[0].stats.failures == 0
