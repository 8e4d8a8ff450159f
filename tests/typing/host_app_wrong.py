"""Typing example that must FAIL mypy: an App's handlers and publisher are checked."""

from __future__ import annotations

from generated.ticket_service import CreateTicket, TicketServicePublisher
from generated.ticket_service import bind as bind_tickets
from toolkit import App, Delivery, Dispatcher, HostContext


class OnlyTickets:
    def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None: ...


def tickets(ctx: HostContext[TicketServicePublisher]) -> Dispatcher:
    return bind_tickets(OnlyTickets())  # E: the user.* handlers are missing


async def publish(ctx: HostContext[TicketServicePublisher]) -> None:
    await ctx.publisher.publish_user_registered()  # E: ticket_service does not publish it


app = App("ticket_service", TicketServicePublisher, tickets)
