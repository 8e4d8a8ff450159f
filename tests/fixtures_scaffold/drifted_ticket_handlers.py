"""A ticket_service implementation that has drifted from the schemas (read by tests/test_impl_check.py).

The check must read this file without importing it: importing it exits.
"""
# ruff: noqa: E402

raise SystemExit("tests/fixtures_scaffold/drifted_ticket_handlers.py was imported")

from generated.ticket_service import CreateTicket, NewCustomer
from generated.ticket_service import CustomerPlanChanged as PlanChange
from toolkit import Delivery


class TicketService:  # missing: on_user_billing_changed
    """Handles ticket_service's messages, more or less."""

    def on_ticket_create(self, message: NewCustomer, meta: Delivery) -> None:  # signature: class
        pass

    def on_user_registered(self, msg: NewCustomer) -> None:  # signature: count
        pass

    def on_ticket_archive(self, message: CreateTicket, meta: Delivery) -> None:  # orphan
        pass

    def _on_private_helper(self, change: PlanChange) -> None:
        pass
