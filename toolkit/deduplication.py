"""Deduplication in the consumer: looking up before the handlers, recording after them.

Two ways, chosen when the consumer subscribes (:func:`deduplication_for`):

* :class:`Recording` (``--deduplicate``): the subscription's store
  (:class:`~toolkit.channels.base.Deduplicates`) is asked which message ids of a
  batch the group handled within the window; those are acknowledged unhandled,
  and the others are recorded ``RECORD_EVERY`` at a time, after their
  handlers and before their acknowledgement. A crash runs again at most the
  step in hand, never loses a message.
* :class:`InTransaction` (``--exactly-once``, PostgreSQL): each step is one
  transaction of the pipe's database holding the records, the handlers' own
  writes and the acknowledgements (:class:`~toolkit.channels.base.HandlesInTransaction`).

``deduplicate = "24h"`` in a schema's ``[commands."key"]`` or
``[subscribes."key"]`` gives that key's route a window
(:attr:`toolkit.dispatcher.Route.deduplicate`); :class:`KeyedDeduplication`
then looks up and records only those keys' ids, each for its own window (a
consumer window covers the other keys). See ``docs/delivery.md#deduplication``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from toolkit.channels.base import Deduplicates, Delivery, HandlesInTransaction, Subscription
from toolkit.context import CURRENT_TRANSACTION
from toolkit.dispatcher import BatchResult

if TYPE_CHECKING:
    from toolkit.consumer import ConsumerStats
    from toolkit.workers import Workers

__all__ = [
    "RECORD_EVERY",
    "DeduplicationUnsupported",
    "ExactlyOnceUnsupported",
    "InTransaction",
    "KeyedDeduplication",
    "Recording",
    "TransactionAborted",
    "deduplication_for",
]

log = logging.getLogger("toolkit.consumer")

#: handled messages are recorded this many at a time: what a crash makes a consumer
#: handle twice (bench/dedup.py measures the cost)
RECORD_EVERY: Final = 10


class DeduplicationUnsupported(ValueError):
    """Deduplication was asked for on a pipe whose subscriptions cannot deduplicate."""


class ExactlyOnceUnsupported(ValueError):
    """Exactly-once effect was asked for on a pipe that cannot commit handlers' writes
    with their acknowledgement (only PostgreSQL can)."""


class TransactionAborted(RuntimeError):
    """A handler returned with its step's transaction in error (it caught a failed
    statement): its writes were rolled back, and it is retried like a failure."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__(
            f"the handler of {delivery.routing_key} {delivery.message_id} returned with the "
            "transaction aborted by a failed statement; its writes were rolled back"
        )


class KeyedDeduplication:
    """:class:`Deduplicates` over ``store`` for the keys of ``windows`` (each its own
    window) and, when ``default`` is set, every other key for that window."""

    def __init__(
        self, store: Deduplicates, windows: Mapping[str, float], default: float | None
    ) -> None:
        self.store = store
        self.windows = dict(windows)
        self.default = default

    def _window(self, delivery: Delivery) -> float | None:
        return self.windows.get(delivery.envelope.headers.routing_key, self.default)

    def covers(self, delivery: Delivery) -> bool:
        """Whether ``delivery``'s key is deduplicated at all."""
        return self._window(delivery) is not None

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        asked = [d for d in deliveries if self.covers(d)]
        return await self.store.seen(asked) if asked else set()

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        """Record each delivery for its key's window (``window`` is the consumer's, unused:
        ``default`` is that)."""
        by_window: dict[float, list[Delivery]] = {}
        for delivery in deliveries:
            own = self._window(delivery)
            if own is not None:
                by_window.setdefault(own, []).append(delivery)
        for seconds, some in by_window.items():
            await self.store.remember(some, seconds)


class Recording:
    """Deduplication through the subscription's store: look up, handle, record."""

    #: the consumer acknowledges what the handlers handled (with its next read)
    acknowledges_handled = True

    def __init__(self, store: Deduplicates, window: float, channel: str) -> None:
        self.store = store
        self.window = window
        self.channel = channel
        self._keyed = store if isinstance(store, KeyedDeduplication) else None

    async def fresh(
        self, deliveries: Sequence[Delivery], duplicates: list[Delivery], stats: ConsumerStats
    ) -> Sequence[Delivery]:
        """The deliveries whose message id the group has not handled within the window
        (nor an earlier delivery of this batch carries); the others join ``duplicates``
        (owed an acknowledgement)."""
        seen = await self.store.seen(deliveries)
        keyed = self._keyed
        fresh: list[Delivery] = []
        before = len(duplicates)
        for delivery in deliveries:
            message_id = delivery.message_id
            if message_id in seen:
                duplicates.append(delivery)
            else:
                # A second copy in the same batch is a duplicate of the first (of a key
                # deduplicated: with windows per key, others are handled each time).
                if keyed is None or keyed.covers(delivery):
                    seen.add(message_id)
                fresh.append(delivery)
        dropped = len(duplicates) - before
        if dropped:
            stats.skipped += dropped
            stats.deduplicated += dropped
            log.debug("%d duplicate(s) acknowledged unhandled on %s", dropped, self.channel)
        return fresh

    async def handle(
        self,
        workers: Workers,
        deliveries: Sequence[Delivery],
        max_deliveries: int,
        stats: ConsumerStats,
    ) -> BatchResult:
        """Run the handlers ``RECORD_EVERY`` messages at a time, recording the handled ones
        after each step: after their handlers, before their acknowledgement (with the
        next read). A crash runs again only the handlers of the step in hand, never
        loses a message; the rest of its batch, recorded, is skipped when redelivered."""
        store, window = self.store, self.window
        if len(deliveries) <= RECORD_EVERY:
            batch = await workers.handle(deliveries, max_deliveries)
            if batch.handled:
                await store.remember(batch.handled, window)
            return batch
        batch = BatchResult()
        for i in range(0, len(deliveries), RECORD_EVERY):
            step = await workers.handle(deliveries[i : i + RECORD_EVERY], max_deliveries)
            if step.handled:
                await store.remember(step.handled, window)
                batch.handled.extend(step.handled)
                batch.skipped += step.skipped
            batch.rejected.extend(step.rejected)
            batch.failed.extend(step.failed)
        return batch


class InTransaction:
    """Exactly-once effect: each step of ``RECORD_EVERY`` messages is one transaction
    (records, the handlers' writes, acknowledgements), one message at a time."""

    #: the steps' transactions acknowledge what was handled
    acknowledges_handled = False

    def __init__(self, pipe: HandlesInTransaction, window: float) -> None:
        self.pipe = pipe
        self.window = window

    async def fresh(
        self, deliveries: Sequence[Delivery], duplicates: list[Delivery], stats: ConsumerStats
    ) -> Sequence[Delivery]:
        """All of them: the records are looked up inside each step's transaction."""
        return deliveries

    async def handle(
        self,
        workers: Workers,
        deliveries: Sequence[Delivery],
        max_deliveries: int,
        stats: ConsumerStats,
    ) -> BatchResult:
        batch = BatchResult()

        async def handle(delivery: Delivery, connection: Any) -> bool:
            token = CURRENT_TRANSACTION.set(connection)
            try:
                one = await workers.handle((delivery,), max_deliveries)
            finally:
                CURRENT_TRANSACTION.reset(token)
            batch.rejected.extend(one.rejected)
            batch.failed.extend(one.failed)
            if not one.handled:
                return False
            batch.handled.append(delivery)
            batch.skipped += one.skipped
            return True

        for i in range(0, len(deliveries), RECORD_EVERY):
            duplicates, aborted = await self.pipe.handle_in_transaction(
                deliveries[i : i + RECORD_EVERY], self.window, handle
            )
            stats.skipped += len(duplicates)
            stats.deduplicated += len(duplicates)
            for delivery in aborted:
                batch.handled.remove(delivery)
                batch.failed.append((delivery, TransactionAborted(delivery)))
        return batch


def deduplication_for(
    sub: Subscription,
    *,
    channel: str,
    pipe: str,
    window: float | None,
    keyed: Mapping[str, float],
    exactly_once: bool,
) -> Recording | InTransaction | None:
    """How a consumer of ``channel`` (on the pipe named ``pipe``) deduplicates, if it does;
    raises :class:`DeduplicationUnsupported` or :class:`ExactlyOnceUnsupported` when the
    subscription cannot."""
    if exactly_once:
        if not isinstance(sub, HandlesInTransaction):
            raise ExactlyOnceUnsupported(
                f"exactly-once effect was asked for on channel {channel!r}, but its "
                f"pipe ({pipe}) cannot commit the handlers' writes with their "
                "acknowledgement; only PostgreSQL can "
                "(docs/delivery.md#exactly-once-effect-on-postgresql)"
            )
        # Under exactly-once every key has the run's window (docs/delivery.md).
        return InTransaction(sub, window or 0.0)
    if window is None and not keyed:
        return None
    if not isinstance(sub, Deduplicates):
        asked = (
            f" for {', '.join(sorted(keyed))} (deduplicate in the schema)"
            if keyed and window is None
            else ""
        )
        raise DeduplicationUnsupported(
            f"deduplication was asked for on channel {channel!r}{asked}, but its pipe "
            f"({pipe}) cannot deduplicate: it keeps no store of handled message ids; "
            "see docs/delivery.md#deduplication"
        )
    store: Deduplicates = KeyedDeduplication(sub, keyed, window) if keyed else sub
    return Recording(store, window or 0.0, channel)
