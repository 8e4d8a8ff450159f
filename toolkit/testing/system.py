"""``InMemorySystem``: several services in one process on in-memory channels, no server.

Start a service's application (the same :class:`~toolkit.App` that
``toolkit run`` serves) or bind a dispatcher, send and publish as any
service, look at what landed in a channel, run a service's consumers for N
messages or until idle.
"""

from __future__ import annotations

import contextlib
from typing import TypeVar

from toolkit.app import App, HostContext, open_app
from toolkit.bus import DistributedBus, SyncDistributedBus
from toolkit.channels.base import DeadLetter
from toolkit.channels.memory import InMemoryTransport
from toolkit.consumer import Consumer, ConsumerStats
from toolkit.dispatcher import Dispatcher
from toolkit.envelope import Envelope
from toolkit.runner import stats_sum
from toolkit.service_map import ServiceMap

P = TypeVar("P")

__all__ = ["InMemorySystem"]


class InMemorySystem:
    """Every service of a service map, wired to one in-memory transport."""

    def __init__(self, service_map: ServiceMap, transport: InMemoryTransport | None = None) -> None:
        self.service_map = service_map
        self.transport = transport or InMemoryTransport()
        self._dispatchers: dict[str, Dispatcher] = {}
        self._consumers: dict[tuple[str, str], Consumer] = {}
        #: started applications, shut down by close() (last started first)
        self._apps = contextlib.AsyncExitStack()

    # -- sending ----------------------------------------------------------------------

    def bus(self, service: str) -> DistributedBus:
        """A bus sending as ``service``."""
        return DistributedBus(service, self.service_map, self.transport)

    def sync_bus(self, service: str) -> SyncDistributedBus:
        return SyncDistributedBus(service, self.service_map, self.transport)

    # -- consuming --------------------------------------------------------------------

    async def start(self, app: App[P]) -> HostContext[P]:
        """Start an application as ``toolkit run`` would, on the in-memory transport.

        Builds its context (its publisher sends through this system), runs
        its startup, binds its dispatcher; ``close()`` runs its shutdown.
        Returns the context: ``ctx.publisher`` sends as the service.
        """
        ctx, dispatcher = await self._apps.enter_async_context(
            open_app(app, self.transport, self.service_map)
        )
        await self.bind(dispatcher)
        return ctx

    async def bind(self, dispatcher: Dispatcher) -> None:
        """Register a service's dispatcher (from its generated ``bind()``) and open its groups."""
        service = dispatcher.service
        self._dispatchers[service] = dispatcher
        for channel in self.service_map.channels_consumed_by(service):
            # The system's map decides what each channel delivers, even to a dispatcher
            # built by hand without one.
            consumer = Consumer(
                self.transport,
                channel.name,
                dispatcher.on_channel(channel.name, self.service_map),
                consumer_name=f"{service}-test",
            )
            await consumer.subscription()
            self._consumers[(service, channel.name)] = consumer

    def consumer(self, service: str, channel: str) -> Consumer:
        try:
            return self._consumers[(service, channel)]
        except KeyError:
            raise KeyError(f"{service!r} is not bound or does not consume {channel!r}") from None

    async def run(
        self, service: str, *, channel: str | None = None, limit: int | None = None
    ) -> ConsumerStats:
        """Run ``service``'s consumers until their channels are empty (or ``limit`` messages).

        Returns the summed stats of this run.
        """
        total = ConsumerStats()
        for (svc, name), consumer in sorted(self._consumers.items()):
            if svc != service or (channel is not None and name != channel):
                continue
            left = None if limit is None else limit - total.processed
            if left is not None and left <= 0:
                break
            before = stats_sum(consumer.stats)
            await consumer.run(limit=left, until_empty=True)
            total = stats_sum(total, consumer.stats, minus=(before,))
        return total

    async def run_all(self, max_rounds: int = 100) -> ConsumerStats:
        """Run every bound service until no channel has work left (handlers may send more).

        Each round consumes what was waiting when the round began, so a handler
        that keeps sending cannot hang the test: after ``max_rounds`` rounds
        with work left, RuntimeError.
        """
        total = ConsumerStats()
        for _ in range(max_rounds):
            progressed = 0
            for (service, channel), consumer in sorted(self._consumers.items()):
                waiting = self.transport.backlog(channel, service)
                if not waiting:
                    continue
                before = stats_sum(consumer.stats)
                await consumer.run(limit=waiting, until_empty=True)
                total = stats_sum(total, consumer.stats, minus=(before,))
                progressed += consumer.stats.processed - before.processed
            if not progressed:
                return total
        raise RuntimeError(f"messages still flowing after {max_rounds} rounds; a handler loop?")

    # -- looking ----------------------------------------------------------------------

    def messages(self, channel: str) -> list[Envelope]:
        """Everything sent to ``channel`` so far, in order."""
        return self.transport.messages(channel)

    def routing_keys(self, channel: str) -> list[str]:
        return [e.headers.routing_key for e in self.messages(channel)]

    async def dead_letters(self, channel: str) -> list[DeadLetter]:
        return await self.transport.dead_letters(channel)

    async def close(self) -> None:
        """Shut the started applications down, close the consumers and the transport."""
        await self._apps.aclose()
        for consumer in self._consumers.values():
            await consumer.close()
        await self.transport.close()
