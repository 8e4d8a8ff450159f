"""The consumer runner: one channel, one service, until told to stop or a limit is reached.

``toolkit run CHANNEL --service NAME --app module:object`` is this module
behind a command line; inside an existing asyncio application use
:class:`Runner` directly::

    dispatcher = generated.ticket_service.bind(MyHandlers())
    runner = Runner(RedisTransport(), "ticket_commands", dispatcher, RunOptions(concurrency=4))
    task = asyncio.create_task(runner.run())
    ...
    runner.stop()          # finishes and settles the batch in hand
    stats = await task

Stopping (``stop()``, or SIGTERM/SIGINT with ``handle_signals=True``) stops
reading, lets the batch in hand finish, acknowledges it, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

import msgspec

from toolkit.channels.base import Transport
from toolkit.consumer import Consumer, ConsumerStats
from toolkit.dispatcher import Dispatcher
from toolkit.retry import RetryPolicy
from toolkit.rss import rss_bytes
from toolkit.workers import SyncHandlers

__all__ = ["RunOptions", "Runner"]

log = logging.getLogger("toolkit.runner")


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


class Runner:
    """Runs a :class:`~toolkit.consumer.Consumer` with limits and graceful stopping."""

    def __init__(
        self,
        transport: Transport,
        channel: str,
        dispatcher: Dispatcher,
        options: RunOptions | None = None,
        *,
        consumer_name: str | None = None,
    ) -> None:
        self.options = options = options or RunOptions()
        self.consumer = Consumer(
            transport,
            channel,
            dispatcher,
            consumer_name=consumer_name,
            batch_size=options.batch_size,
            block_timeout=options.block_timeout,
            retry=options.retry,
            concurrency=options.concurrency,
            sync_handlers=options.sync_handlers,
        )
        #: why ``run`` returned: "stopped", "limit", "time limit", "memory limit", "failure", "empty"
        self.reason = ""

    @property
    def stats(self) -> ConsumerStats:
        return self.consumer.stats

    def stop(self) -> None:
        """Stop reading; the batch in hand is finished and acknowledged first."""
        self.consumer.stop()

    def _over_memory(self) -> bool:
        limit = self.options.memory_limit
        if limit is None or rss_bytes() <= limit:
            return False
        self.reason = "memory limit"
        return True

    async def run(self, *, handle_signals: bool = False) -> ConsumerStats:
        """Consume until stopped or a limit is reached; closes the subscription on return.

        ``handle_signals`` makes SIGTERM and SIGINT stop the runner gracefully
        (only in the main thread; the previous handlers are restored after).
        """
        options = self.options
        consumer = self.consumer
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if handle_signals:
            for sig in (int(signal.SIGTERM), int(signal.SIGINT)):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        started = time.monotonic()
        before = consumer.stats.processed
        try:
            failures_before = _failures(consumer.stats)
            stats = await consumer.run(
                limit=options.limit,
                until_empty=options.until_empty,
                time_limit=options.time_limit,
                stop_on_failure=options.stop_on_failure,
                should_stop=self._over_memory if options.memory_limit is not None else None,
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await consumer.close()
        if not self.reason:
            if consumer.stopping:
                self.reason = "stopped"
            elif options.stop_on_failure and _failures(stats) > failures_before:
                self.reason = "failure"
            elif options.limit is not None and stats.processed - before >= options.limit:
                self.reason = "limit"
            elif options.until_empty:
                self.reason = "empty"
            else:
                self.reason = "time limit"
        elapsed = time.monotonic() - started
        log.info(
            "consumer %s on %s stopped (%s) after %.1fs: %d handled, %d skipped, %d retried, "
            "%d dead-lettered",
            consumer.consumer_name,
            consumer.channel,
            self.reason,
            elapsed,
            stats.handled,
            stats.skipped,
            stats.retried,
            stats.rejected + stats.failed,
        )
        return stats

    def _on_signal(self, sig: int) -> None:
        log.info("%s: finishing the batch in hand, then stopping", signal.Signals(sig).name)
        self.reason = "stopped"
        self.stop()


def _failures(stats: ConsumerStats) -> int:
    return stats.failed + stats.retried + stats.rejected
