"""The bundled example system end to end, through the pytest plugin's fixtures."""

from __future__ import annotations

import decimal
import uuid

from generated.billing_service import InvoiceAccountUpdate, TicketForBilling
from generated.billing_service import bind as bind_billing
from generated.ticket_service import (
    CreateTicket,
    CustomerPlanChanged,
    NewCustomer,
    Priority,
    TicketOpened,
    TicketServicePublisher,
)
from generated.ticket_service import bind as bind_tickets
from generated.user_service import (
    Address,
    Plan,
    UserBillingChanged,
    UserRegistered,
    UserServicePublisher,
)
from toolkit import Delivery
from toolkit.testing import InMemorySystem


class Tickets:
    def __init__(self, publisher: TicketServicePublisher) -> None:
        self.publisher = publisher
        self.customers: list[NewCustomer] = []
        self.plans: list[CustomerPlanChanged] = []

    async def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:
        await self.publisher.publish_ticket_opened(
            TicketOpened(
                ticket_id=message.ticket_id, subject=message.subject, priority=message.priority
            ),
            caused_by=meta,
        )

    def on_user_registered(self, message: NewCustomer, meta: Delivery) -> None:
        self.customers.append(message)

    def on_user_billing_changed(self, message: CustomerPlanChanged, meta: Delivery) -> None:
        self.plans.append(message)


class Billing:
    def __init__(self) -> None:
        self.updates: list[InvoiceAccountUpdate] = []
        self.tickets: list[TicketForBilling] = []

    def on_user_billing_changed(self, message: InvoiceAccountUpdate, meta: Delivery) -> None:
        self.updates.append(message)

    def on_ticket_opened(self, message: TicketForBilling, meta: Delivery) -> None:
        self.tickets.append(message)


async def test_user_events_and_a_welcome_ticket_flow_through_the_example(
    toolkit_system: InMemorySystem,
) -> None:
    system = toolkit_system
    tickets = Tickets(TicketServicePublisher(system.bus("ticket_service")))
    billing = Billing()
    await system.bind(bind_tickets(tickets))
    await system.bind(bind_billing(billing))
    users = UserServicePublisher(system.bus("user_service"))
    user_id = uuid.uuid4()
    import datetime

    await users.publish_user_registered(
        UserRegistered(
            user_id=user_id,
            email="ann@example.com",
            full_name="Ann Example",
            registered_at=datetime.datetime.now(datetime.UTC),
        )
    )
    await users.publish_user_billing_changed(
        UserBillingChanged(
            user_id=user_id,
            plan=Plan.PRO,
            billing_address=Address(street="Main 1", city="Oslo", country="NO"),
            monthly_price=decimal.Decimal("9.90"),
        )
    )
    await users.send_ticket_create(
        CreateTicket(
            ticket_id=user_id,
            subject="Welcome",
            requester_email="ann@example.com",
            priority=Priority.URGENT,
        )
    )
    stats = await system.run_all()
    assert stats.rejected == stats.failed == 0
    assert tickets.customers == [
        NewCustomer(user_id=user_id, email="ann@example.com", name="Ann Example")
    ]
    assert tickets.customers[0].language == "en"
    assert tickets.plans == [CustomerPlanChanged(user_id=user_id, plan="pro")]
    assert billing.updates == [
        InvoiceAccountUpdate(
            account_id=user_id,
            monthly_price=decimal.Decimal("9.90"),
            billing_address=billing.updates[0].billing_address,
        )
    ]
    assert billing.updates[0].billing_address.city == "Oslo"
    assert billing.tickets == [TicketForBilling(ticket_id=user_id, priority="urgent")]
    # billing's group on the shared user_events stream skipped user.registered
    assert system.consumer("billing_service", "user_events").stats.skipped == 1


def test_generated_code_has_not_drifted(toolkit_drift) -> None:  # type: ignore[no-untyped-def]
    toolkit_drift()
