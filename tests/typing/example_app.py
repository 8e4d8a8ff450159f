"""Typing example: an application using the generated code. Checked by mypy --strict in the suite."""

from __future__ import annotations

import datetime
import decimal
import uuid

from generated.billing_service import BillingServiceHandlers, InvoiceAccountUpdate, TicketForBilling
from generated.billing_service import bind as bind_billing
from generated.service_map import SERVICE_MAP
from generated.ticket_service import (
    CreateTicket,
    CustomerPlanChanged,
    NewCustomer,
    Priority,
    TicketServiceHandlers,
    TicketServicePublisher,
)
from generated.ticket_service import bind as bind_tickets
from generated.user_service import (
    Address,
    Plan,
    UserBillingChanged,
    UserRegistered,
    UserServicePublisher,
    UserServiceSyncPublisher,
)
from toolkit import (
    Delivery,
    Dispatcher,
    DistributedBus,
    InMemoryTransport,
    PublishResult,
)


class Tickets:
    """Async handlers satisfy the Protocol."""

    def __init__(self, publisher: TicketServicePublisher) -> None:
        self.publisher = publisher

    async def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:
        priority: Priority = message.priority
        assert priority is not None

    async def on_user_registered(self, message: NewCustomer, meta: Delivery) -> None:
        name: str = message.name
        assert name

    def on_user_billing_changed(self, message: CustomerPlanChanged, meta: Delivery) -> None:
        """Sync handlers satisfy it too."""


class Billing:
    def on_ticket_opened(self, message: TicketForBilling, meta: Delivery) -> None:
        pass

    def on_user_billing_changed(self, message: InvoiceAccountUpdate, meta: Delivery) -> None:
        price: decimal.Decimal = message.monthly_price
        assert price >= 0


async def wire() -> tuple[Dispatcher, Dispatcher]:
    transport = InMemoryTransport()
    # A publisher is built from a transport, or from a bus of its own service.
    tickets: TicketServiceHandlers = Tickets(TicketServicePublisher(transport))
    billing: BillingServiceHandlers = Billing()
    users = UserServicePublisher(DistributedBus("user_service", SERVICE_MAP, transport))
    result: PublishResult = await users.publish_user_billing_changed(
        UserBillingChanged(
            user_id=uuid.uuid4(),
            plan=Plan.PRO,
            billing_address=Address(street="Main 1", city="Oslo", country="NO"),
            monthly_price=decimal.Decimal("9.90"),
        ),
        metadata={"tenant": "t1"},
    )
    message_id: str = await users.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="Welcome", requester_email="a@example.com")
    )
    assert result.channels and message_id
    sync_users = UserServiceSyncPublisher(transport)
    sync_users.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="e"),
        message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "https://shop.example/requests/42")),
    )
    # Scheduled: in ten minutes, or at a given (timezone-aware) instant.
    await users.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="later", requester_email="e"),
        delay=datetime.timedelta(minutes=10),
    )
    sync_users.publish_user_registered(
        UserRegistered(
            user_id=uuid.uuid4(),
            email="a@example.com",
            full_name="A",
            registered_at=datetime.datetime.now(datetime.UTC),
        ),
        deliver_at=datetime.datetime(2030, 1, 1, 9, tzinfo=datetime.UTC),
    )
    _ = datetime.datetime.now(datetime.UTC)
    return bind_tickets(tickets), bind_billing(billing)
