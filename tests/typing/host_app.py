"""Typing example that must PASS mypy --strict: applications for the service host."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from generated.billing_service import InvoiceAccountUpdate, TicketForBilling
from generated.billing_service import bind as bind_billing
from generated.service_map import SERVICE_MAP
from generated.ticket_service import (
    CreateTicket,
    CustomerPlanChanged,
    NewCustomer,
    Priority,
    TicketOpened,
    TicketServicePublisher,
)
from generated.ticket_service import bind as bind_tickets
from toolkit import App, Delivery, Dispatcher, HostContext, InMemoryTransport, ServiceHost
from toolkit.testing import InMemorySystem


class Tickets:
    def __init__(self, publisher: TicketServicePublisher) -> None:
        self.publisher = publisher

    async def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:
        await self.publisher.publish_ticket_opened(
            TicketOpened(
                ticket_id=message.ticket_id, subject=message.subject, priority=Priority.LOW
            )
        )

    def on_user_registered(self, message: NewCustomer, meta: Delivery) -> None: ...

    def on_user_billing_changed(self, message: CustomerPlanChanged, meta: Delivery) -> None: ...


def tickets(ctx: HostContext[TicketServicePublisher]) -> Dispatcher:
    ctx.log.info("starting %s", ctx.service)
    return bind_tickets(Tickets(ctx.publisher))


class Billing:
    def __init__(self, rates: dict[str, int]) -> None:
        self.rates = rates

    def on_ticket_opened(self, message: TicketForBilling, meta: Delivery) -> None: ...

    def on_user_billing_changed(self, message: InvoiceAccountUpdate, meta: Delivery) -> None: ...


@contextlib.asynccontextmanager
async def billing(ctx: HostContext[None]) -> AsyncIterator[Dispatcher]:
    rates = {"pro": 10}  # a resource opened before, closed after
    yield bind_billing(Billing(rates))
    rates.clear()


ticket_app: App[TicketServicePublisher] = App("ticket_service", TicketServicePublisher, tickets)
billing_app: App[None] = App("billing_service", None, billing)


async def run() -> None:
    system = InMemorySystem(SERVICE_MAP)
    ctx = await system.start(ticket_app)
    publisher: TicketServicePublisher = ctx.publisher
    assert publisher
    await system.start(billing_app)
    host = ServiceHost(InMemoryTransport(), ticket_app, SERVICE_MAP)
    await host.run()
