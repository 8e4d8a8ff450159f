"""The dispatcher: routing key -> (decoder for the consumer's class, handler).

Generated ``bind()`` functions build one per service from an implementation
of the service's handler Protocol. Everything that can be decided once is
decided here, at bind time: one msgspec decoder per (key, class), whether a
handler is a coroutine function, and for each channel the service consumes
(:meth:`Dispatcher.on_channel`, called by the consumer) which event keys it
subscribes to there and from which publishers. Per message, routing reads
only the headers.

Coroutine handlers are awaited on the event loop. Synchronous ones are called
on it too (the fast path: no hop for a cheap handler) unless the caller
passes a worker pool (``pool``), as the consumer does with
``sync_handlers="thread"``: then each call runs in a pool thread, in a copy of
the caller's context (contextvars set around the call are seen inside), and
the loop keeps serving other channels, renewing leases and acknowledging.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from enum import Enum
from typing import Any, Final

import msgspec

from toolkit.channels.base import Delivery
from toolkit.context import CURRENT_DELIVERY
from toolkit.envelope import COMMAND, JSON
from toolkit.routing import publisher_filter
from toolkit.service_map import ServiceMap

__all__ = ["BatchResult", "Dispatcher", "HandlerResult", "Outcome", "Rejected", "Route"]

HandlerResult = Awaitable[None] | None


class Outcome(Enum):
    HANDLED = "handled"
    #: an event this service does not handle (on this channel, from this publisher):
    #: acknowledged and skipped
    SKIPPED = "skipped"
    #: dead-lettered at once, no retries (see the reason)
    REJECTED = "rejected"
    #: the handler raised: retry or dead-letter by policy
    FAILED = "failed"


class Rejected(Exception):
    """Raised by a handler to dead-letter the message at once, without retries."""


class Route:
    """One consumed routing key: how to decode it and whom to call."""

    __slots__ = (
        "decode",
        "deduplicate",
        "handler",
        "is_async",
        "kind",
        "message_type",
        "publishers",
        "routing_key",
    )

    def __init__(
        self,
        routing_key: str,
        kind: str,
        message_type: type[Any],
        handler: Callable[..., Any],
        *,
        deduplicate: float | None = None,
    ) -> None:
        if deduplicate is not None and not deduplicate > 0:
            raise ValueError(f"the deduplication window must be positive, not {deduplicate!r}")
        self.routing_key = routing_key
        #: seconds within which a message id handled already is skipped (``deduplicate``
        #: in the schema's table for this key); None: only as the consumer says
        self.deduplicate = deduplicate
        self.kind = kind
        self.message_type = message_type
        self.handler = handler
        self.decode: Callable[[bytes], Any] = msgspec.json.Decoder(message_type).decode
        self.is_async = inspect.iscoroutinefunction(handler)
        #: an event's publisher (``source_service``) -> handled?; None: any publisher
        self.publishers: Callable[[str], bool] | None = None

    def accepting(self, publishers: Callable[[str], bool] | None) -> Route:
        """This route, for events of the publishers ``publishers`` accepts only."""
        route = copy.copy(self)
        route.publishers = publishers
        return route


class Dispatcher:
    """Decides, per delivery, whether to handle, skip or reject it, and calls the handler."""

    __slots__ = ("_routes", "channel", "service", "service_map")

    def __init__(
        self, service: str, routes: Iterable[Route], *, service_map: ServiceMap | None = None
    ) -> None:
        self.service = service
        #: the subscriptions :meth:`on_channel` reads (generated ``bind()`` passes SERVICE_MAP)
        self.service_map = service_map
        #: set on the dispatcher :meth:`on_channel` made for one channel
        self.channel: str | None = None
        self._routes: dict[str, Route] = {}
        for route in routes:
            if route.routing_key in self._routes:
                raise ValueError(f"routing key {route.routing_key!r} bound twice for {service!r}")
            self._routes[route.routing_key] = route

    @property
    def routes(self) -> dict[str, Route]:
        return dict(self._routes)

    def deduplication_windows(self) -> dict[str, float]:
        """Routing key -> window, for the routes that deduplicate (schema ``deduplicate``)."""
        return {k: r.deduplicate for k, r in self._routes.items() if r.deduplicate is not None}

    def with_service_map(self, service_map: ServiceMap) -> Dispatcher:
        """This dispatcher reading its subscriptions from ``service_map`` when it has none
        (a hand-made one): the map decides what each channel delivers to it."""
        if self.service_map is not None or self.channel is not None:
            return self
        made = copy.copy(self)
        made.service_map = service_map
        return made

    def on_channel(self, channel: str, service_map: ServiceMap | None = None) -> Dispatcher:
        """This dispatcher as the consumer of ``channel`` uses it.

        An event is handled there only when the service subscribes to its key
        on that channel, from its publisher (``include_publishers`` or
        ``exclude_publishers`` against ``source_service``); any other event is
        skipped, so that an event a shared stream carries for another service
        is not handled once more here. Commands keep their rules (target
        service, declared key). Without a service map (``service_map`` or the
        one given at construction), every routed key is handled on any channel.
        """
        if self.channel is not None:
            if channel != self.channel:
                raise ValueError(
                    f"this dispatcher of {self.service!r} is for channel {self.channel!r}, "
                    f"not {channel!r}"
                )
            return self
        service_map = service_map or self.service_map
        if service_map is None:
            return self
        spec = service_map.channels.get(channel)
        if spec is None or self.service not in spec.consumers:
            consumed = [c.name for c in service_map.channels_consumed_by(self.service)]
            raise ValueError(
                f"the service map says {self.service!r} does not consume {channel!r} "
                f"(it consumes: {', '.join(consumed) or 'nothing'})"
            )
        subscribed = [
            r
            for r in service_map.event_routes
            if r.channel == channel and r.subscriber == self.service
        ]
        routes: list[Route] = []
        for route in self._routes.values():
            if route.kind == COMMAND:
                routes.append(route)
                continue
            matching = [r for r in subscribed if r.matches_key(route.routing_key)]
            if matching:
                routes.append(route.accepting(publisher_filter(matching)))
        view = Dispatcher(self.service, routes, service_map=service_map)
        view.channel = channel
        return view

    def route_for(self, delivery: Delivery) -> Route | str | None:
        """The route, a rejection reason (str), or None for an event to skip."""
        h = delivery.envelope.headers
        route = self._routes.get(h.routing_key)
        if h.kind == COMMAND:
            if h.target_service != self.service:
                return (
                    f"command {h.routing_key!r} is addressed to service {h.target_service!r}, "
                    f"not to {self.service!r}"
                )
            if route is None or route.kind != COMMAND:
                return f"service {self.service!r} declares no command {h.routing_key!r}"
            return _check_content_type(h.content_type) or route
        if (
            route is None
            or route.kind == COMMAND
            or (route.publishers is not None and not route.publishers(h.source_service))
        ):
            return None
        return _check_content_type(h.content_type) or route

    async def dispatch_batch(
        self, deliveries: Sequence[Delivery], pool: Executor | None = None
    ) -> BatchResult:
        """Handle a batch in order; the per-message path of :meth:`dispatch` without a
        coroutine per message for synchronous handlers (the consumer's hot loop).

        With ``pool``, synchronous handlers run in its threads, one call at a time.
        """
        result = BatchResult()
        done = result.handled
        routes = self._routes
        set_current, reset_current = CURRENT_DELIVERY.set, CURRENT_DELIVERY.reset
        service = self.service
        for delivery in deliveries:
            h = delivery.envelope.headers
            route = routes.get(h.routing_key)
            if (
                route is None
                or route.kind != h.kind
                or (h.kind == COMMAND and h.target_service != service)
                or (h.content_type != JSON and not h.content_type.startswith("application/json;"))
                or (route.publishers is not None and not route.publishers(h.source_service))
            ):
                # Keys without a route or of the other kind, commands for another
                # service, odd content types and publishers the subscription leaves
                # out: route_for()'s rules (what passes here is what route_for passes).
                decided = self.route_for(delivery)
                if decided is None:
                    result.skipped += 1
                    done.append(delivery)
                    continue
                if isinstance(decided, str):
                    result.rejected.append((delivery, decided))
                    continue
                route = decided
            try:
                message = route.decode(delivery.envelope.body)
            except Exception as exc:
                # Not only DecodeError: invalid UTF-8 inside a string raises
                # UnicodeDecodeError, deep nesting RecursionError. Any of them
                # is this message's fault alone.
                result.rejected.append((delivery, _undecodable(route, exc)))
                continue
            # What the handler sends continues this message's conversation (toolkit.context).
            token = set_current(delivery)
            try:
                if route.is_async:
                    await route.handler(message, delivery)
                else:
                    if pool is None:
                        returned = route.handler(message, delivery)
                    else:
                        returned = await in_thread(pool, route.handler, message, delivery)
                    if returned is not None and inspect.isawaitable(returned):
                        await returned
            except Rejected as exc:
                result.rejected.append((delivery, f"rejected by handler: {exc}"))
                continue
            except Exception as exc:
                result.failed.append((delivery, exc))
                continue
            finally:
                reset_current(token)
            done.append(delivery)
        return result

    async def dispatch(
        self, delivery: Delivery, pool: Executor | None = None
    ) -> tuple[Outcome, str | BaseException | None]:
        """Handle one delivery. Never raises for a bad message or a failing handler."""
        result = await self.dispatch_batch((delivery,), pool)
        if result.rejected:
            return Outcome.REJECTED, result.rejected[0][1]
        if result.failed:
            return Outcome.FAILED, result.failed[0][1]
        return _SKIPPED if result.skipped else _HANDLED


class BatchResult:
    """What :meth:`Dispatcher.dispatch_batch` decided for a batch, in delivery order."""

    __slots__ = ("failed", "handled", "rejected", "skipped")

    def __init__(self) -> None:
        #: handled or skipped: acknowledge these
        self.handled: list[Delivery] = []
        self.skipped = 0
        #: (delivery, reason): dead-letter at once
        self.rejected: list[tuple[Delivery, str]] = []
        #: (delivery, exception): retry or dead-letter by policy
        self.failed: list[tuple[Delivery, BaseException]] = []


_HANDLED: Final = (Outcome.HANDLED, None)
_SKIPPED: Final = (Outcome.SKIPPED, None)


async def in_thread(
    pool: Executor, handler: Callable[..., Any], message: Any, delivery: Delivery
) -> Any:
    """Call a synchronous handler in a thread of ``pool`` and wait for it without blocking
    the loop. The context is copied here, after the caller set what the handler may read
    (the delivery in hand), so the thread sees it."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, context.run, handler, message, delivery)


def _undecodable(route: Route, exc: Exception) -> str:
    what = str(exc) if isinstance(exc, msgspec.DecodeError) else f"{type(exc).__name__}: {exc}"
    return f"cannot decode {route.routing_key!r} as {route.message_type.__name__}: {what}"


def _check_content_type(content_type: str) -> str | None:
    if content_type == JSON or content_type.startswith("application/json;"):
        return None
    return f"unsupported content type {content_type!r}: generated handlers read {JSON}"
