"""The consumer: receives batches from one channel and owns acknowledgement.

Handler returns -> ack (batched). Event the service does not handle, or not
on this channel or not from this publisher (its subscriptions in the service
map, :meth:`~toolkit.dispatcher.Dispatcher.on_channel`) -> ack, counted as skipped.
Undecodable payload, undeclared key, command for another service ->
dead-letter at once with the reason. Handler raises -> retry after a delay
by the consumer's :class:`~toolkit.retry.RetryPolicy` (when the subscription
supports :class:`~toolkit.channels.base.DelayedRetry`), then dead-letter with
the error's type, message and traceback and the attempts made.

Where handlers run (synchronous ones on the loop or in worker threads) is
:mod:`toolkit.workers`. While a batch is handled, its lease is renewed on a
transport that has leases (:mod:`toolkit.leases`).

A transport outage (:class:`~toolkit.channels.base.TransportError`) never
ends ``run``: the consumer logs, backs off (growing pauses, capped, never a
tight loop), keeps the settlements it still owes (acks, dead letters,
retries) and makes them first once the channel is back. It returns only
when asked (``stop``) or when a limit given to ``run`` is reached.

What is owed and how it is settled, and what a dead letter says about a
handler's failure, is :mod:`toolkit.settlement`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from toolkit import telemetry
from toolkit.channels.base import (
    AcksOnReceive,
    DelayedRetry,
    Delivery,
    RenewsLeases,
    SettlesOnReceipt,
    Subscription,
    Transport,
    TransportError,
)
from toolkit.deduplication import (
    DeduplicationUnsupported,
    ExactlyOnceUnsupported,
    InTransaction,
    Recording,
    deduplication_for,
)
from toolkit.dispatcher import Dispatcher
from toolkit.leases import LeaseKeeper
from toolkit.retry import NO_RETRY, RetryPolicy
from toolkit.settlement import Owed, describe_failure, failure_details
from toolkit.workers import SyncHandlers, Workers

__all__ = [
    "Consumer",
    "ConsumerStats",
    "DeduplicationUnsupported",
    "ExactlyOnceUnsupported",
    "default_consumer_name",
    "describe_failure",
    "failure_details",
]

log = logging.getLogger("toolkit.consumer")

#: pauses after consecutive transport errors grow from this to _OUTAGE_CAP seconds
_OUTAGE_BASE: Final = 0.1
_OUTAGE_CAP: Final = 5.0
#: seconds between throughput lines at debug level
_RATE_EVERY: Final = 10.0


class ConsumerStats(msgspec.Struct):
    received: int = 0
    handled: int = 0
    skipped: int = 0
    #: dead-lettered at once (bad input, or the handler raised Rejected)
    rejected: int = 0
    #: the handler raised on the last allowed attempt: dead-lettered
    failed: int = 0
    #: the handler raised and another attempt was scheduled
    retried: int = 0
    #: of ``skipped``: handled already by the group within the deduplication window
    deduplicated: int = 0

    @property
    def processed(self) -> int:
        return self.handled + self.skipped + self.rejected + self.failed + self.retried


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Consumer:
    """Consumes one channel for one service (its consumer group).

    ``concurrency`` > 1 runs up to that many handlers of a batch at once;
    order within the batch is then not kept. ``sync_handlers``: where
    synchronous handlers run (:mod:`toolkit.workers`; by default in
    ``concurrency`` worker threads when it is > 1, else on the loop thread).
    ``retry`` defaults to no retries, the behaviour tests built on
    :class:`~toolkit.testing.InMemorySystem` expect; the runner
    (``toolkit run``) defaults to :class:`~toolkit.retry.RetryPolicy`'s defaults.
    ``deduplicate``: a window in seconds; a message id the group handled
    within it is acknowledged without calling the handler (counted as
    skipped and deduplicated). The subscription must implement
    :class:`~toolkit.channels.base.Deduplicates`, else ``subscription()``
    raises :class:`DeduplicationUnsupported`. ``exactly_once`` (with
    ``deduplicate``, ``concurrency`` 1): each step's handlers run in one
    transaction of the pipe's database, handed to them as
    :func:`toolkit.context.current_transaction`, that also records and
    acknowledges the step's messages (:class:`~toolkit.channels.base.HandlesInTransaction`,
    else ``subscription()`` raises :class:`ExactlyOnceUnsupported`).
    """

    def __init__(
        self,
        transport: Transport,
        channel: str,
        dispatcher: Dispatcher,
        *,
        consumer_name: str | None = None,
        batch_size: int = 100,
        block_timeout: float = 1.0,
        retry: RetryPolicy = NO_RETRY,
        concurrency: int = 1,
        sync_handlers: SyncHandlers = "auto",
        deduplicate: float | None = None,
        exactly_once: bool = False,
    ) -> None:
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        if deduplicate is not None and not deduplicate > 0:
            raise ValueError(f"the deduplication window must be positive, not {deduplicate!r}")
        if exactly_once and (deduplicate is None or concurrency != 1):
            raise ValueError(
                "exactly-once effect needs deduplication (the window its records are kept) "
                "and concurrency 1 (a step's handlers share one transaction)"
            )
        self.exactly_once = exactly_once
        self.deduplicate = deduplicate
        self._window = deduplicate or 0.0
        self.transport = transport
        self.channel = channel
        # Events of this channel only: its subscriptions, with their publisher filters.
        self.dispatcher = dispatcher.on_channel(channel)
        self.group = dispatcher.service
        self.consumer_name = consumer_name or default_consumer_name()
        self.batch_size = batch_size
        self.block_timeout = block_timeout
        self.retry = retry
        self.concurrency = concurrency
        self.workers = Workers(self.dispatcher, concurrency, sync_handlers, channel)
        self._sync_handlers = sync_handlers
        #: the telemetry self.workers was made for (toolkit.telemetry.ACTIVE when it was)
        self._telemetry: object = None
        self.stats = ConsumerStats()
        self._subscription: Subscription | None = None
        self._stopping = asyncio.Event()
        self._owed = Owed()
        self._receipts: Callable[[], tuple[int, int]] | None = None
        self._leases: RenewsLeases | None = None
        self._acks_on_receive: AcksOnReceive | None = None
        self._dedup: Recording | InTransaction | None = None

    async def subscription(self) -> Subscription:
        if self._subscription is None:
            sub = await self.transport.subscribe(self.channel, self.group, self.consumer_name)
            try:
                self._dedup = deduplication_for(
                    sub,
                    channel=self.channel,
                    pipe=self._pipe_name(),
                    window=self.deduplicate,
                    keyed=self.dispatcher.deduplication_windows(),
                    exactly_once=self.exactly_once,
                )
            except ValueError:
                await sub.close()
                raise
            self._subscription = sub
            self._receipts = sub.settled_on_receipt if isinstance(sub, SettlesOnReceipt) else None
            self._leases = sub if isinstance(sub, RenewsLeases) else None
            self._acks_on_receive = sub if isinstance(sub, AcksOnReceive) else None
            if telemetry.ACTIVE is not self._telemetry:
                self._instrument()
        return self._subscription

    def _pipe_name(self) -> str:
        """The class of the pipe carrying the channel (the one bound to it, under ``Pipes``)."""
        transport: object = self.transport
        bound = getattr(transport, "transport", None)
        if callable(bound):
            transport = bound(self.channel)
        return type(transport).__name__

    @property
    def closed(self) -> bool:
        """No subscription is open (not yet, or no longer)."""
        return self._subscription is None

    def _instrument(self) -> None:
        """Run the handlers the way the telemetry in force wants (toolkit.telemetry)."""
        active = self._telemetry = telemetry.ACTIVE
        dispatcher = self.dispatcher if active is None else active.instrument(self)
        self.workers.close()
        self.workers = Workers(dispatcher, self.concurrency, self._sync_handlers, self.channel)

    def stop(self) -> None:
        """Ask ``run`` to finish the batch in hand, settle it and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(
        self,
        *,
        limit: int | None = None,
        until_empty: bool = False,
        time_limit: float | None = None,
        stop_on_failure: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> ConsumerStats:
        """Consume until stopped, ``limit`` messages processed, the channel is empty
        (``until_empty``: nothing to receive and no retry scheduled in the group,
        by any of its consumers), ``time_limit`` seconds passed, a message failed
        (``stop_on_failure``: handler raised or message dead-lettered), or
        ``should_stop()`` returns true (checked between batches)."""
        stats = self.stats
        deadline = None if time_limit is None else time.monotonic() + time_limit
        start = stats.processed
        outages = 0
        #: until_empty: the channel said retries are waiting, so receive blocks for them
        retries_due = False
        rate_at, rate_count = time.monotonic(), stats.processed
        while not self._stopping.is_set():
            if should_stop is not None and should_stop():
                break
            want = self.batch_size
            if limit is not None:
                want = min(want, limit - (stats.processed - start))
                if want <= 0:
                    break
            timeout = self.block_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            bad_before = stats.failed + stats.retried + stats.rejected
            try:
                sub = await self.subscription()
                owed = self._owed
                acking = self._acks_on_receive
                if owed.rejects or owed.retries or (owed.acks and acking is None):
                    await owed.settle(sub)
                wait = timeout if retries_due or not until_empty else 0
                if owed.acks and acking is not None:
                    # Only acknowledgements owed: they go with the next read, one round trip.
                    deliveries = await acking.receive_acking(owed.acks, want, wait)
                    owed.acks = []
                else:
                    deliveries = await sub.receive(want, wait)
                settled = self._count_receipts()
                if deliveries:
                    retries_due = False
                    await self._handle(sub, deliveries)
                    if acking is None or owed.rejects or owed.retries:
                        await owed.settle(sub)
                elif until_empty:
                    # "Empty" includes retries any consumer of the group scheduled:
                    # the channel knows them all, this consumer only its own.
                    retries_due = isinstance(sub, DelayedRetry) and await sub.retries_waiting() > 0
            except TransportError as exc:
                outages += 1
                pause = min(_OUTAGE_CAP, _OUTAGE_BASE * 2 ** min(outages - 1, 10))
                pause *= 0.5 + random.random() / 2
                log_at = logging.WARNING if outages == 1 or outages % 20 == 0 else logging.DEBUG
                log.log(
                    log_at,
                    "channel %s unavailable (attempt %d), retrying in %.2fs: %s",
                    self.channel,
                    outages,
                    pause,
                    exc,
                )
                await self._pause(pause)
                continue
            if outages:
                log.warning("channel %s available again after %d attempt(s)", self.channel, outages)
                outages = 0
            if stop_on_failure and stats.failed + stats.retried + stats.rejected > bad_before:
                log.info("stopping after a failed message on %s", self.channel)
                break
            # Nothing handed out but entries dead-lettered on receipt: not empty yet.
            if not deliveries and not settled and until_empty and not retries_due:
                break
            if log.isEnabledFor(logging.DEBUG):
                now = time.monotonic()
                if now - rate_at >= _RATE_EVERY:
                    done = stats.processed - rate_count
                    log.debug(
                        "%s/%s: %d messages in %.1fs (%.0f msg/s)",
                        self.channel,
                        self.consumer_name,
                        done,
                        now - rate_at,
                        done / (now - rate_at),
                    )
                    rate_at, rate_count = now, stats.processed
        if self._owed and self._subscription is not None:
            try:
                await self._owed.settle(self._subscription)
            except TransportError as exc:
                log.warning(
                    "could not settle %d message(s) on %s before stopping (%s); "
                    "they stay pending and will be delivered again",
                    len(self._owed.acks) + len(self._owed.rejects) + len(self._owed.retries),
                    self.channel,
                    exc,
                )
        return stats

    def _count_receipts(self) -> int:
        """Count what the last ``receive`` dead-lettered or skipped by itself; how many."""
        if self._receipts is None:
            return 0
        dead, skipped = self._receipts()
        if dead or skipped:
            stats = self.stats
            stats.received += dead + skipped
            stats.rejected += dead
            stats.skipped += skipped
        return dead + skipped

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def process(self, sub: Subscription, deliveries: Sequence[Delivery]) -> None:
        """Dispatch a batch and settle every message of it.

        Raises :class:`TransportError` when settling fails; what is still owed
        is kept and settled first by the next ``run`` iteration.
        """
        await self._handle(sub, deliveries)
        await self._owed.settle(sub)

    async def _handle(self, sub: Subscription, deliveries: Sequence[Delivery]) -> None:
        """Dispatch a batch and record what each message is owed (see ``process``).

        ``run`` settles a batch that needs only acknowledgements with its next
        read (:class:`~toolkit.channels.base.AcksOnReceive`), anything else at once.
        """
        stats = self.stats
        stats.received += len(deliveries)
        owed = self._owed
        done = owed.acks
        retry = self.retry
        if telemetry.ACTIVE is not self._telemetry:  # turned on or off since the last batch
            self._instrument()
        dedup = self._dedup
        if dedup is not None:
            deliveries = await dedup.fresh(deliveries, done, stats)
            if not deliveries:
                return
        keeper = (
            None
            if self._leases is None
            else LeaseKeeper(self._leases, deliveries, self.channel, self.group)
        )
        try:
            if dedup is None:
                batch = await self.workers.handle(deliveries, retry.delivery_limit)
            else:
                batch = await dedup.handle(self.workers, deliveries, retry.delivery_limit, stats)
        finally:
            # Before settling: nothing settled is renewed.
            if keeper is not None:
                await keeper.stop()
        if dedup is None or dedup.acknowledges_handled:
            done.extend(batch.handled)  # else acknowledged by their steps' transactions
        stats.skipped += batch.skipped
        stats.handled += len(batch.handled) - batch.skipped
        for delivery, reason in batch.rejected:
            stats.rejected += 1
            log.warning(
                "dead-lettered %s %s on %s: %s",
                delivery.routing_key,
                delivery.message_id,
                self.channel,
                reason.partition("\n")[0],
            )
            owed.rejects.append(
                (
                    delivery,
                    reason,
                    {"channel": self.channel, "attempts": str(delivery.delivery_count)},
                )
            )
        # Checked only when needed: isinstance against a runtime protocol is slow.
        can_retry = bool(batch.failed) and retry.attempts > 1 and isinstance(sub, DelayedRetry)
        for delivery, exc in batch.failed:
            count = delivery.delivery_count
            if can_retry and retry.should_retry(count):
                stats.retried += 1
                delay = retry.delay(count)
                log.warning(
                    "handler failed for %s %s on %s (attempt %d of %d), retrying in %.2fs: %s: %s",
                    delivery.routing_key,
                    delivery.message_id,
                    self.channel,
                    count,
                    retry.attempts,
                    delay,
                    type(exc).__name__,
                    exc,
                )
                owed.retries.append((delivery, delay))
            else:
                stats.failed += 1
                log.error(
                    "handler failed for %s %s on %s (attempt %d of %d), dead-lettered: %s: %s",
                    delivery.routing_key,
                    delivery.message_id,
                    self.channel,
                    count,
                    retry.attempts,
                    type(exc).__name__,
                    exc,
                )
                owed.rejects.append(
                    (delivery, describe_failure(exc), failure_details(exc, count, self.channel))
                )

    async def close(self) -> None:
        self.workers.close()
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
