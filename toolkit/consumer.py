"""The consumer: receives batches from one channel and owns acknowledgement.

Handler returns -> ack (batched). Event the service does not handle -> ack.
Undecodable payload, undeclared key, command for another service ->
dead-letter with the reason. Handler raises -> dead-letter with the error's
type, message and traceback (retries with backoff are a transport policy
layered on top; see ``docs/redis.md``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import traceback
from collections.abc import Sequence

import msgspec

from toolkit.channels.base import Delivery, Subscription, Transport
from toolkit.dispatcher import Dispatcher, Outcome

__all__ = ["Consumer", "ConsumerStats", "default_consumer_name", "describe_failure"]

log = logging.getLogger("toolkit.consumer")


class ConsumerStats(msgspec.Struct):
    received: int = 0
    handled: int = 0
    skipped: int = 0
    rejected: int = 0
    failed: int = 0

    @property
    def processed(self) -> int:
        return self.handled + self.skipped + self.rejected + self.failed


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def describe_failure(exc: BaseException) -> str:
    """The dead-letter reason for a handler exception: type, message and traceback."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"handler raised {type(exc).__name__}: {exc}\n{trace}"


class Consumer:
    """Consumes one channel for one service (its consumer group)."""

    def __init__(
        self,
        transport: Transport,
        channel: str,
        dispatcher: Dispatcher,
        *,
        consumer_name: str | None = None,
        batch_size: int = 100,
        block_timeout: float = 1.0,
    ) -> None:
        self.transport = transport
        self.channel = channel
        self.dispatcher = dispatcher
        self.group = dispatcher.service
        self.consumer_name = consumer_name or default_consumer_name()
        self.batch_size = batch_size
        self.block_timeout = block_timeout
        self.stats = ConsumerStats()
        self._subscription: Subscription | None = None
        self._stopping = asyncio.Event()

    async def subscription(self) -> Subscription:
        if self._subscription is None:
            self._subscription = await self.transport.subscribe(
                self.channel, self.group, self.consumer_name
            )
        return self._subscription

    def stop(self) -> None:
        """Ask ``run`` to finish the batch in hand and return."""
        self._stopping.set()

    async def run(
        self,
        *,
        limit: int | None = None,
        until_empty: bool = False,
        time_limit: float | None = None,
    ) -> ConsumerStats:
        """Consume until stopped, ``limit`` messages processed, the channel is empty
        (``until_empty``), or ``time_limit`` seconds passed."""
        sub = await self.subscription()
        deadline = None if time_limit is None else time.monotonic() + time_limit
        start = self.stats.processed
        while not self._stopping.is_set():
            want = self.batch_size
            if limit is not None:
                want = min(want, limit - (self.stats.processed - start))
                if want <= 0:
                    break
            timeout = self.block_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            deliveries = await sub.receive(want, 0 if until_empty else timeout)
            if not deliveries:
                if until_empty:
                    break
                continue
            await self.process(sub, deliveries)
        return self.stats

    async def process(self, sub: Subscription, deliveries: Sequence[Delivery]) -> None:
        """Dispatch a batch in order and settle every message of it."""
        stats = self.stats
        stats.received += len(deliveries)
        done: list[Delivery] = []
        dispatch = self.dispatcher.dispatch
        for delivery in deliveries:
            outcome, detail = await dispatch(delivery)
            if outcome is Outcome.HANDLED:
                stats.handled += 1
                done.append(delivery)
            elif outcome is Outcome.SKIPPED:
                stats.skipped += 1
                done.append(delivery)
            elif outcome is Outcome.REJECTED:
                stats.rejected += 1
                reason = str(detail)
                log.warning(
                    "rejected %s %s on %s: %s",
                    delivery.routing_key,
                    delivery.message_id,
                    self.channel,
                    reason,
                )
                await sub.reject(delivery, reason)
            else:
                stats.failed += 1
                assert isinstance(detail, BaseException)
                log.error(
                    "handler failed for %s %s on %s: %s: %s",
                    delivery.routing_key,
                    delivery.message_id,
                    self.channel,
                    type(detail).__name__,
                    detail,
                )
                await sub.reject(delivery, describe_failure(detail))
        if done:
            await sub.ack(done)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
