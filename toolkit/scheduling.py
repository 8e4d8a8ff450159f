"""Scheduled messages: the due time a publisher asks for, as the ``deliver_at`` header.

The bus turns ``delay=`` / ``deliver_at=`` into the envelope's ``deliver_at_ms``
(Unix milliseconds); a transport that implements
:class:`~toolkit.channels.base.Schedules` holds the message until then. See
``docs/delivery.md#scheduled-messages``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from toolkit.envelope import Envelope

__all__ = [
    "ScheduledUnlistedError",
    "SchedulingUnsupportedError",
    "due_ms",
    "scheduled_any",
    "split_due",
    "unlisted",
    "unsupported",
]


class SchedulingUnsupportedError(TypeError):
    """A due time was asked of a pipe that cannot hold messages until then.

    Transports that can set the class attribute ``schedules_messages = True``
    (the capability flag the bus checks before building a scheduled message).
    """


class ScheduledUnlistedError(SchedulingUnsupportedError):
    """``scheduled`` or ``cancel_scheduled`` on a pipe that holds scheduled messages where
    they cannot be read back (RabbitMQ: in the broker's TTL queues). Sending with a due
    time works there; only listing and cancelling are refused."""


def unlisted(pipe: str, doc: str) -> str:
    return (
        f"{pipe} cannot list or cancel scheduled messages: they wait inside the broker, "
        f"where they cannot be read back (sending with delay= / deliver_at= works); see {doc}"
    )


def unsupported(what: str) -> str:
    return (
        f"{what} cannot schedule messages (delay= / deliver_at=): "
        "its pipe does not hold a message until it is due; see docs/delivery.md#scheduled-messages"
    )


def due_ms(delay: timedelta | float | None, deliver_at: datetime | None) -> int:
    """The ``deliver_at_ms`` header for ``delay`` or ``deliver_at``; 0 for neither.

    Raises ``ValueError`` for both at once, a naive datetime (whose zone would
    be a guess) or a negative delay. A due time in the past is kept: the pipe
    delivers it at once.
    """
    if delay is None and deliver_at is None:
        return 0
    if delay is not None and deliver_at is not None:
        raise ValueError("give delay or deliver_at, not both")
    if deliver_at is not None:
        if not isinstance(deliver_at, datetime):
            raise TypeError(f"deliver_at must be a datetime, not {type(deliver_at).__name__}")
        if deliver_at.tzinfo is None or deliver_at.utcoffset() is None:
            raise ValueError(
                f"deliver_at must be timezone-aware (e.g. datetime.now(UTC)), not naive {deliver_at}"
            )
        return max(int(deliver_at.timestamp() * 1000), 1)
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"delay must be a timedelta or seconds, not {type(delay).__name__}")
    if not seconds >= 0:  # also refuses NaN
        raise ValueError(f"delay must not be negative, not {delay!r}")
    return time.time_ns() // 1_000_000 + round(seconds * 1000)


def split_due(
    envelopes: Sequence[Envelope], now_ms: int
) -> tuple[Sequence[Envelope], list[Envelope]]:
    """(due now, to hold): envelopes with a ``deliver_at_ms`` after ``now_ms`` are held."""
    later = [e for e in envelopes if e.headers.deliver_at_ms > now_ms]
    if not later:
        return envelopes, later
    return [e for e in envelopes if e.headers.deliver_at_ms <= now_ms], later


def scheduled_any(envelopes: Sequence[Envelope]) -> bool:
    """Whether any of ``envelopes`` carries a due time."""
    return any(e.headers.deliver_at_ms for e in envelopes)
