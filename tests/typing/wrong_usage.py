"""Typing example that must FAIL mypy: the generated stubs really constrain users."""

from __future__ import annotations

import uuid

from generated.ticket_service import NewCustomer, TicketServiceHandlers
from generated.user_service import CreateTicket, UserServicePublisher
from toolkit import Delivery, InMemoryTransport


class MissingAHandler:
    def on_ticket_create(self, message: NewCustomer, meta: Delivery) -> None:  # wrong message class
        pass


async def misuse() -> None:
    handlers: TicketServiceHandlers = (
        MissingAHandler()
    )  # E: missing on_user_registered, wrong signature
    users = UserServicePublisher(InMemoryTransport())
    await users.send_ticket_create(
        NewCustomer(user_id=uuid.uuid4(), email="e", name="n")
    )  # E: wrong class
    await users.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="e"), message_id=42
    )  # E: a message id is a string
    await users.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="e"), deliver_at="9:00"
    )  # E: a due time is a datetime
    assert handlers
