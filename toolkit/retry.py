"""Retry policy: how often a failing handler is tried again, and after what delay.

The policy only decides; the consumer acts. When a handler raises on
delivery *n* and ``n < attempts``, the consumer asks the subscription to
deliver the message again after ``delay(n)`` seconds (exponential backoff:
``base * 2 ** (n - 1)``, at most ``cap``, with up to ``jitter`` of it
randomised so that a burst of failures does not come back as one burst). The
wait happens in the channel (the Redis delay set), never in the consumer:
other messages keep flowing. Once ``attempts`` deliveries have failed, the
message is dead-lettered with the error.

Every delivery counts as an attempt, including one that ended in a crash
(the message was redelivered after the visibility timeout), so a message
that keeps killing its consumer (segfault, OOM kill, ``os._exit``) reaches
the dead-letter queue once it has been delivered more than
:attr:`RetryPolicy.delivery_limit` times: ``max_deliveries`` when set, else
``attempts`` + :data:`CRASH_MARGIN`. The margin keeps every retry the policy
promises, and leaves room for deliveries cut short through no fault of the
message (a consumer killed by a deploy, a batch reclaimed from a slow
consumer) while still ending a crash loop after a few restarts.
"""

from __future__ import annotations

import random
from typing import Final

import msgspec

__all__ = ["CRASH_MARGIN", "NO_RETRY", "RetryPolicy"]

#: deliveries beyond ``attempts`` before a message that never settles is dead-lettered
CRASH_MARGIN: Final = 10


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    #: deliveries in total, the first one included; 1 means "no retry"
    attempts: int = 5
    #: delay before the second delivery, seconds
    base: float = 0.5
    #: longest delay, seconds
    cap: float = 60.0
    #: fraction of each delay that is randomised (0 = exact delays)
    jitter: float = 0.1
    #: dead-letter without calling the handler once a message has been delivered
    #: more than this many times (crash loops); None = ``attempts + CRASH_MARGIN``
    max_deliveries: int | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.max_deliveries is not None and self.max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")

    @property
    def delivery_limit(self) -> int:
        """Deliveries after which a message is dead-lettered without calling the handler."""
        if self.max_deliveries is not None:
            return self.max_deliveries
        return self.attempts + CRASH_MARGIN

    def should_retry(self, delivery_count: int) -> bool:
        """Whether a failure on delivery number ``delivery_count`` gets another try."""
        return delivery_count < self.attempts

    def delay(self, delivery_count: int) -> float:
        """Seconds to wait after a failure on delivery number ``delivery_count`` (1-based)."""
        exponent = min(max(delivery_count - 1, 0), 62)
        delay = min(self.cap, self.base * (2.0**exponent))
        if self.jitter:
            delay -= delay * self.jitter * random.random()
        return delay


#: dead-letter on the first failure (what a bare :class:`~toolkit.Consumer` does)
NO_RETRY: Final = RetryPolicy(attempts=1)
