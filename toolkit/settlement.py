"""Settling a batch: what the consumer owes the transport, and what its dead letters say.

The consumer decides first (ack, dead-letter with a reason, retry later)
and records each decision in :class:`Owed`; ``settle`` makes them, forgetting
each once the transport confirms it. A settlement the transport could not
confirm (an outage) stays owed and is made first when the channel is back.
"""

from __future__ import annotations

import traceback

from toolkit.channels.base import DelayedRetry, Delivery, Subscription
from toolkit.dispatcher import Outcome

__all__ = ["Owed", "describe_failure", "failure_details", "too_many_deliveries"]


def describe_failure(exc: BaseException) -> str:
    """The dead-letter reason for a handler exception: type, message and traceback."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"handler raised {type(exc).__name__}: {exc}\n{trace}"


def failure_details(exc: BaseException, attempts: int, channel: str) -> dict[str, str]:
    """Structured dead-letter details for a handler exception."""
    return {
        "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "error_message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "attempts": str(attempts),
        "channel": channel,
    }


def too_many_deliveries(delivery: Delivery) -> tuple[Outcome, str]:
    """The outcome for a delivery seen more often than ``RetryPolicy.max_deliveries``."""
    return (
        Outcome.REJECTED,
        f"delivered {delivery.delivery_count} times without being settled "
        "(did handling it crash the consumer?)",
    )


class Owed:
    """Settlements decided but not yet confirmed by the transport (kept across an outage)."""

    __slots__ = ("acks", "rejects", "retries")

    def __init__(self) -> None:
        self.acks: list[Delivery] = []
        self.rejects: list[tuple[Delivery, str, dict[str, str]]] = []
        self.retries: list[tuple[Delivery, float]] = []

    def __bool__(self) -> bool:
        return bool(self.acks or self.rejects or self.retries)

    async def settle(self, sub: Subscription) -> None:
        """Make owed acks, dead letters and retries; each is forgotten once the transport confirms it."""
        if self.acks:
            await sub.ack(self.acks)
            self.acks = []
        while self.rejects:
            delivery, reason, details = self.rejects[0]
            await sub.reject(delivery, reason, details)
            self.rejects.pop(0)
        while self.retries:
            delivery, delay = self.retries[0]
            assert isinstance(sub, DelayedRetry)
            await sub.retry_later(delivery, delay)
            self.retries.pop(0)
