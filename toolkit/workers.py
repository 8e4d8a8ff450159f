"""Calling a batch's handlers: on the event loop or in worker threads, in order or at once.

Coroutine handlers always run on the loop. Synchronous ones run where
``sync_handlers`` says (:data:`SyncHandlers`):

* ``"inline"``: on the loop thread, one call per message with no hop (the
  fast path for cheap handlers); a handler that blocks stops everything the
  loop does meanwhile: other channels, lease renewal, acknowledgements.
* ``"thread"``: in a pool of ``concurrency`` threads, made on first use. Each
  call costs a thread hop (tens of microseconds), and the loop stays free.
* ``"auto"`` (the default): threads when ``concurrency`` > 1, else inline.

With ``concurrency`` 1, handlers of a batch run one after another in
delivery order, wherever they run; with more, up to that many at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, get_args

from toolkit.channels.base import Delivery
from toolkit.dispatcher import BatchResult, Dispatcher, Outcome
from toolkit.settlement import too_many_deliveries

__all__ = ["SyncHandlers", "Workers"]

#: where synchronous handlers run: "inline" on the event loop thread, "thread" in
#: worker threads, "auto" in threads when concurrency > 1
SyncHandlers = Literal["auto", "inline", "thread"]


class Workers:
    """Runs the handlers of one consumer's batches."""

    __slots__ = ("_dispatcher", "_name", "_pool", "concurrency", "threads")

    def __init__(
        self, dispatcher: Dispatcher, concurrency: int, sync_handlers: SyncHandlers, name: str
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if sync_handlers not in get_args(SyncHandlers):
            raise ValueError(f"sync_handlers must be one of {', '.join(get_args(SyncHandlers))}")
        self._dispatcher = dispatcher
        self._name = name
        self.concurrency = concurrency
        #: synchronous handlers run in threads (decided once, from the routes)
        self.threads = (
            sync_handlers == "thread" or (sync_handlers == "auto" and concurrency > 1)
        ) and any(not route.is_async for route in dispatcher.routes.values())
        self._pool: ThreadPoolExecutor | None = None

    async def handle(self, deliveries: Sequence[Delivery], max_deliveries: int) -> BatchResult:
        """Run the handlers of a batch. A message delivered more than ``max_deliveries``
        times is rejected without calling its handler."""
        pool = self._pool
        if pool is None and self.threads:
            pool = self._pool = ThreadPoolExecutor(
                self.concurrency, thread_name_prefix=f"toolkit-{self._name}"
            )
        dispatcher = self._dispatcher
        if self.concurrency <= 1 and max([d.delivery_count for d in deliveries]) <= max_deliveries:
            # The hot path: one call for the batch, no coroutine per sync handler.
            return await dispatcher.dispatch_batch(deliveries, pool)
        if self.concurrency > 1 and len(deliveries) > 1:
            gate = asyncio.Semaphore(self.concurrency)

            async def one(delivery: Delivery) -> tuple[Outcome, str | BaseException | None]:
                if delivery.delivery_count > max_deliveries:
                    return too_many_deliveries(delivery)
                async with gate:
                    return await dispatcher.dispatch(delivery, pool)

            outcomes = list(await asyncio.gather(*(one(d) for d in deliveries)))
        else:
            outcomes = [
                await dispatcher.dispatch(d, pool)
                if d.delivery_count <= max_deliveries
                else too_many_deliveries(d)
                for d in deliveries
            ]
        result = BatchResult()
        for delivery, (outcome, detail) in zip(deliveries, outcomes, strict=True):
            if outcome is Outcome.HANDLED or outcome is Outcome.SKIPPED:
                result.handled.append(delivery)
                result.skipped += outcome is Outcome.SKIPPED
            elif outcome is Outcome.REJECTED:
                result.rejected.append((delivery, str(detail)))
            else:
                assert isinstance(detail, BaseException)
                result.failed.append((delivery, detail))
        return result

    def close(self) -> None:
        """Let the threads go. A batch is settled only once its handlers returned, so none
        is running unless the consumer was cancelled; such a handler finishes in its
        thread, and its message, unacknowledged, is delivered again."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
