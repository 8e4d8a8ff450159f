"""The consumer runner: one service's channels, until told to stop or a limit is reached.

``toolkit run SERVICE --app module:object`` is this module (through
:class:`~toolkit.host.ServiceHost`) behind a command line; inside an existing
asyncio application use :class:`Runner` directly::

    dispatcher = generated.ticket_service.bind(MyHandlers())
    channels = ["ticket_commands", "user_events"]  # or one channel: "ticket_commands"
    runner = Runner(RedisTransport(), channels, dispatcher, RunOptions(concurrency=4))
    task = asyncio.create_task(runner.run())
    ...
    runner.stop()          # finishes and settles the batch in hand on every channel
    stats = await task

One :class:`~toolkit.consumer.Consumer` per channel, all on the one
transport (its connections) and the one event loop. The limits are the
process's: ``limit`` counts messages over all channels (one batch per
other channel may be in hand when it is reached: those are finished too),
and whatever stops one channel (a limit, a failure with
``stop_on_failure``, the memory limit) stops them all; with ``until_empty``
the runner returns once every channel is empty.

Stopping (``stop()``, or SIGTERM/SIGINT with ``handle_signals=True``) stops
reading, lets the batch in hand finish, acknowledges it, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from typing import Final

import msgspec
import msgspec.structs

from toolkit.channels.base import Transport, TransportError
from toolkit.consumer import Consumer, ConsumerStats
from toolkit.dispatcher import Dispatcher
from toolkit.retry import RetryPolicy
from toolkit.rss import rss_bytes
from toolkit.workers import SyncHandlers

__all__ = ["RunOptions", "Runner", "stats_sum"]

log = logging.getLogger("toolkit.runner")

#: pauses between attempts to open the subscriptions while the transport is down
_SUBSCRIBE_BASE: Final = 0.1
_SUBSCRIBE_CAP: Final = 5.0


class RunOptions(msgspec.Struct, frozen=True, kw_only=True):
    #: stop after this many messages processed (handled, skipped, retried or dead-lettered)
    limit: int | None = None
    #: stop after this many seconds
    time_limit: float | None = None
    #: stop (gracefully) once the process's resident memory exceeds this many bytes
    memory_limit: int | None = None
    #: stop after a batch in which a handler raised or a message was dead-lettered
    stop_on_failure: bool = False
    #: stop when there is nothing left to receive
    until_empty: bool = False
    batch_size: int = 100
    #: handlers of a batch run at once (order within a batch is then not kept)
    concurrency: int = 1
    #: where synchronous handlers run: "thread" (worker threads, as many as concurrency),
    #: "inline" (the event loop thread), "auto" (threads when concurrency > 1)
    sync_handlers: SyncHandlers = "auto"
    #: longest wait for new messages before checking limits again, seconds
    block_timeout: float = 1.0
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    #: deduplication window, seconds: a message id the service handled within it is
    #: acknowledged without calling the handler again (docs/delivery.md#deduplication)
    deduplicate: float | None = None
    #: with ``deduplicate``, on PostgreSQL: the handlers' writes through
    #: :func:`toolkit.context.current_transaction` commit with the records and the
    #: acknowledgements (docs/delivery.md#exactly-once-effect-on-postgresql)
    exactly_once: bool = False


def stats_sum(*stats: ConsumerStats, minus: Sequence[ConsumerStats] = ()) -> ConsumerStats:
    """Field by field, the sum of ``stats`` less the sum of ``minus`` (a new object)."""
    total = [0] * len(ConsumerStats.__struct_fields__)
    for sign, group in ((1, stats), (-1, minus)):
        for one in group:
            for i, value in enumerate(msgspec.structs.astuple(one)):
                total[i] += sign * value
    return ConsumerStats(*total)


class Runner:
    """Runs a :class:`~toolkit.consumer.Consumer` per channel with limits and graceful stopping."""

    def __init__(
        self,
        transport: Transport,
        channel: str | Sequence[str],
        dispatcher: Dispatcher,
        options: RunOptions | None = None,
        *,
        consumer_name: str | None = None,
    ) -> None:
        channels = (channel,) if isinstance(channel, str) else tuple(channel)
        if not channels:
            raise ValueError("a runner needs at least one channel")
        if len(set(channels)) != len(channels):
            raise ValueError(f"a channel is named twice: {', '.join(channels)}")
        self.options = options = options or RunOptions()
        self.consumers = [
            Consumer(
                transport,
                name,
                dispatcher,
                consumer_name=consumer_name,
                batch_size=options.batch_size,
                block_timeout=options.block_timeout,
                retry=options.retry,
                concurrency=options.concurrency,
                sync_handlers=options.sync_handlers,
                deduplicate=options.deduplicate,
                exactly_once=options.exactly_once,
            )
            for name in channels
        ]
        #: why ``run`` returned: "stopped", "limit", "time limit", "memory limit", "failure", "empty"
        self.reason = ""
        #: every channel's subscription is open (its group exists): the runner is receiving
        self.subscribed = False
        self._stop = asyncio.Event()
        self._processed_before = 0

    @property
    def consumer(self) -> Consumer:
        """The consumer of the first (with one channel: the only) channel."""
        return self.consumers[0]

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c.channel for c in self.consumers)

    @property
    def stats(self) -> ConsumerStats:
        """With one channel its consumer's live stats; with several, their sum (a copy)."""
        if len(self.consumers) == 1:
            return self.consumer.stats
        return stats_sum(*(c.stats for c in self.consumers))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop reading; the batch in hand on each channel is finished and acknowledged first."""
        self._stop.set()
        for consumer in self.consumers:
            consumer.stop()

    async def _close_consumers(self, failed: bool) -> None:
        """Close every consumer; after an error (``failed``) a failing close is logged, not
        raised: the error that stopped the run is the one to see (an outage fails both)."""
        first: Exception | None = None
        for consumer in self.consumers:
            try:
                await consumer.close()
            except Exception as exc:
                if failed:
                    log.warning("could not close consumer on %s: %s", consumer.channel, exc)
                elif first is None:
                    first = exc
        if first is not None:
            raise first

    def _processed(self) -> int:
        return sum(c.stats.processed for c in self.consumers)

    async def run(self, *, handle_signals: bool = False) -> ConsumerStats:
        """Consume until stopped or a limit is reached; closes the subscriptions on return.

        ``handle_signals`` makes SIGTERM and SIGINT stop the runner gracefully
        (only in the main thread; the previous handlers are restored after).
        Returns the stats of this run, summed over the channels.
        """
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if handle_signals:
            for sig in (int(signal.SIGTERM), int(signal.SIGINT)):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        started = time.monotonic()
        before = [msgspec.structs.replace(c.stats) for c in self.consumers]
        self._processed_before = self._processed()
        failed = False
        try:
            if await self._subscribe():
                outcomes = await asyncio.gather(
                    *(self._run_one(c, b) for c, b in zip(self.consumers, before, strict=True)),
                    return_exceptions=True,
                )
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome
        except BaseException:
            failed = True
            raise
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self._close_consumers(failed)
            self.subscribed = False
        # Every channel ran dry (until_empty), or the runner was stopped before it began.
        self.reason = self.reason or ("stopped" if self.stopping else "empty")
        elapsed = time.monotonic() - started
        runs = [stats_sum(c.stats, minus=(b,)) for c, b in zip(self.consumers, before, strict=True)]
        for consumer, stats in zip(self.consumers, runs, strict=True):
            log.info(
                "consumer %s on %s stopped (%s) after %.1fs: %d handled, %d skipped, "
                "%d retried, %d dead-lettered",
                consumer.consumer_name,
                consumer.channel,
                self.reason,
                elapsed,
                stats.handled,
                stats.skipped,
                stats.retried,
                stats.rejected + stats.failed,
            )
        return stats_sum(*runs)

    async def _subscribe(self) -> bool:
        """Open every channel's subscription; False when stopped before they were all open.

        A transport that is down is waited for (growing pauses), as the
        consumers themselves would, so that ``subscribed`` tells the truth.
        """
        attempts = 0
        while not self.stopping:
            try:
                for consumer in self.consumers:
                    await consumer.subscription()
            except TransportError as exc:
                attempts += 1
                pause = min(_SUBSCRIBE_CAP, _SUBSCRIBE_BASE * 2 ** min(attempts - 1, 10))
                if attempts == 1 or attempts % 20 == 0:
                    log.warning("cannot subscribe (attempt %d), retrying: %s", attempts, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)
                continue
            self.subscribed = True
            return True
        return False

    async def _run_one(self, consumer: Consumer, before: ConsumerStats) -> None:
        options = self.options
        several = len(self.consumers) > 1
        try:
            await consumer.run(
                limit=options.limit,
                until_empty=options.until_empty,
                time_limit=options.time_limit,
                stop_on_failure=options.stop_on_failure,
                should_stop=self._should_stop
                if several or options.memory_limit is not None
                else None,
            )
        except BaseException:
            self._stop_others(consumer)  # they finish their batch; the error is raised after
            raise
        reason = self._why(consumer, before)
        if reason != "empty":
            self.reason = self.reason or reason
            self._stop_others(consumer)

    def _stop_others(self, consumer: Consumer) -> None:
        for other in self.consumers:
            if other is not consumer:
                other.stop()

    def _should_stop(self) -> bool:
        """Checked by every consumer between batches: the process's limits."""
        if self.reason:
            return True
        options = self.options
        if (
            options.limit is not None
            and self._processed() - self._processed_before >= options.limit
        ):
            self.reason = "limit"
            return True
        if options.memory_limit is not None and rss_bytes() > options.memory_limit:
            self.reason = "memory limit"
            return True
        return False

    def _why(self, consumer: Consumer, before: ConsumerStats) -> str:
        """Why ``consumer.run`` returned."""
        options = self.options
        stats = consumer.stats
        if self.reason:
            return self.reason
        if consumer.stopping:
            return "stopped"
        if options.stop_on_failure and _failures(stats) > _failures(before):
            return "failure"
        if options.limit is not None and stats.processed - before.processed >= options.limit:
            return "limit"
        if options.until_empty:
            return "empty"
        return "time limit"

    def _on_signal(self, sig: int) -> None:
        log.info("%s: finishing the batch in hand, then stopping", signal.Signals(sig).name)
        self.reason = "stopped"
        self.stop()


def _failures(stats: ConsumerStats) -> int:
    return stats.failed + stats.retried + stats.rejected
