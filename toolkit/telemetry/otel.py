"""The OpenTelemetry side of :mod:`toolkit.telemetry`: spans, trace context, metrics.

Only ``opentelemetry-api`` is imported: the SDK, its exporters and its
sampling are the application's (or ``opentelemetry-instrument``'s) choice.
Names and attributes are listed in ``docs/observability.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from toolkit.channels.base import Delivery, ReportsStatus, TransportError
from toolkit.dispatcher import Dispatcher, Route
from toolkit.envelope import COMMAND, Envelope

if TYPE_CHECKING:
    from toolkit.bus import _Sender
    from toolkit.consumer import Consumer, ConsumerStats

__all__ = ["INSTRUMENTATION", "Telemetry"]

log = logging.getLogger("toolkit.telemetry")

#: the instrumentation scope of every span and metric the toolkit makes
INSTRUMENTATION: Final = "toolkit"
SYSTEM: Final = "toolkit"

_PROPAGATOR: Final = TraceContextTextMapPropagator()

# Attribute names: the messaging semantic conventions, then the toolkit's own.
A_SYSTEM: Final = "messaging.system"
A_DESTINATION: Final = "messaging.destination.name"
A_OPERATION: Final = "messaging.operation"
A_MESSAGE_ID: Final = "messaging.message.id"
A_CONVERSATION: Final = "messaging.message.conversation_id"
A_ROUTING_KEY: Final = "toolkit.routing_key"
A_KIND: Final = "toolkit.kind"
A_SOURCE: Final = "toolkit.source_service"
A_TARGET: Final = "toolkit.target_service"
A_CHANNEL: Final = "toolkit.channel"
A_GROUP: Final = "toolkit.group"
A_DELIVERY_COUNT: Final = "toolkit.delivery_count"
A_OUTCOME: Final = "toolkit.outcome"


class _Carrier(dict[str, str]):
    """The envelope's trace fields as the W3C propagator reads and writes them."""


def context_of(traceparent: str, tracestate: str = "") -> otel_context.Context | None:
    """The remote span context a message carries, as a parent; None when it carries none
    (or one the W3C rules reject: it is ignored, never an error)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    found = _PROPAGATOR.extract(carrier)
    return found if trace.get_current_span(found).get_span_context().is_valid else None


class _Stats:
    """The counts of every consumer of one (channel, group) in this process, ever."""

    __slots__ = ("stats",)

    def __init__(self) -> None:
        # Strong references to the small stats objects: a consumer that is closed and
        # collected keeps counting in the total, so the counters never go down.
        self.stats: list[ConsumerStats] = []

    def total(self, read: Callable[[ConsumerStats], int]) -> int:
        return sum(read(s) for s in self.stats)


class Telemetry:
    """Tracing and metrics in force; see :func:`toolkit.telemetry.enable`."""

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        tracing: bool = True,
        metrics: bool = True,
        status_interval: float = 10.0,
    ) -> None:
        self.tracer: trace.Tracer | None = (
            trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider) if tracing else None
        )
        self.status_interval = status_interval
        self._stats: dict[tuple[str, str], _Stats] = {}
        #: (channel, group) -> the last status reading of that group: lag, pending, ...
        self._readings: dict[tuple[str, str], dict[str, int]] = {}
        self._watched: dict[tuple[int, str], tuple[Any, str, weakref.ref[Consumer]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        #: (routing key, kind, source service) -> messages built; counted here, read on
        #: collection (an SDK counter's add costs more than building the message)
        self.published: dict[tuple[str, str, str], int] | None = {} if metrics else None
        self.duration = None
        if metrics:
            meter = (
                meter_provider.get_meter(INSTRUMENTATION)
                if meter_provider is not None
                else otel_metrics.get_meter(INSTRUMENTATION)
            )
            meter.create_observable_counter(
                "toolkit.messages.published",
                [self._observe_published],
                unit="{message}",
                description="Messages a bus built and sent, per routing key",
            )
            self.duration = meter.create_histogram(
                "toolkit.handler.duration",
                unit="s",
                description="How long a handler ran, per routing key",
            )
            for name, read, description in _COUNTS:
                meter.create_observable_counter(
                    name, [self._observe_count(read)], unit="{message}", description=description
                )
            for name, key, description in _GAUGES:
                meter.create_observable_gauge(
                    name, [self._observe_reading(key)], unit="{message}", description=description
                )

    # -- publishing ------------------------------------------------------------------

    def publishing(self, bus: _Sender, envelope: Envelope, caused_by: Delivery | None) -> Envelope:
        """The envelope the bus sends: with the trace context of a new publish span when
        tracing, counted per routing key when metering."""
        h = envelope.headers
        published = self.published
        if published is not None:
            key = (h.routing_key, h.kind, h.source_service)
            published[key] = published.get(key, 0) + 1
        tracer = self.tracer
        if tracer is None:
            return envelope
        parent: otel_context.Context | None = None
        if not trace.get_current_span().get_span_context().is_valid and caused_by is not None:
            # Sent for a message outside its handler's span (caused_by=, or a consumer
            # that is not traced): continue the trace that message carries.
            cause = caused_by.envelope.headers
            parent = context_of(cause.traceparent, cause.tracestate)
        if h.kind == COMMAND:
            channels: tuple[str, ...] = (bus.service_map.command_channel(h.target_service),)
        else:
            channels = bus.service_map.event_channels(h.routing_key, bus.service)
        attributes: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_DESTINATION: ",".join(channels),
            A_OPERATION: "publish",
            A_MESSAGE_ID: h.message_id,
            A_CONVERSATION: h.correlation_id or h.message_id,
            A_ROUTING_KEY: h.routing_key,
            A_KIND: h.kind,
            A_SOURCE: h.source_service,
            A_CHANNEL: channels,
        }
        if h.target_service:
            attributes[A_TARGET] = h.target_service
        span = tracer.start_span(
            f"publish {h.routing_key}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        carrier = _Carrier()
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span, parent))
        span.end()
        traceparent = carrier.get("traceparent", "")
        if not traceparent:  # a non-recording, unsampled-and-invalid span: nothing to carry
            return envelope
        headers = msgspec.structs.replace(
            h, traceparent=traceparent, tracestate=carrier.get("tracestate", "")
        )
        return Envelope(headers, envelope.body)

    # -- consuming -------------------------------------------------------------------

    def instrument(self, consumer: Consumer) -> Dispatcher:
        """The dispatcher ``consumer`` runs while this telemetry is in force: its own, with
        each handler in a process span (tracing) and timed (metrics). Registers the
        consumer's counts and, when its transport can tell, its group's lag and pending."""
        key = (consumer.channel, consumer.group)
        counted = self._stats.setdefault(key, _Stats())
        if not any(s is consumer.stats for s in counted.stats):
            counted.stats.append(consumer.stats)
        if isinstance(consumer.transport, ReportsStatus):
            self._watch(consumer)
        if self.tracer is None and self.duration is None:
            return consumer.dispatcher
        dispatcher = consumer.dispatcher
        routes = [self._route(route, consumer) for route in dispatcher.routes.values()]
        traced = Dispatcher(dispatcher.service, routes, service_map=dispatcher.service_map)
        traced.channel = dispatcher.channel
        return traced

    def _route(self, route: Route, consumer: Consumer) -> Route:
        handler = route.handler
        base: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_DESTINATION: consumer.channel,
            A_OPERATION: "process",
            A_ROUTING_KEY: route.routing_key,
            A_KIND: route.kind,
            A_CHANNEL: consumer.channel,
            A_GROUP: consumer.group,
        }
        where = {
            A_ROUTING_KEY: route.routing_key,
            A_CHANNEL: consumer.channel,
            A_GROUP: consumer.group,
        }
        #: the histogram's attributes, by "the handler returned"
        timed = {True: {**where, A_OUTCOME: "ok"}, False: {**where, A_OUTCOME: "error"}}
        begin, finish = self._begin, self._finish
        traced = Route(route.routing_key, route.kind, route.message_type, handler)
        traced.decode = route.decode
        traced.publishers = route.publishers
        if route.is_async:

            async def call_async(message: Any, delivery: Delivery) -> None:
                state = begin(delivery, base)
                try:
                    await handler(message, delivery)
                except BaseException as exc:
                    finish(state, timed, exc)
                    raise
                finish(state, timed, None)

            traced.handler = call_async
        else:

            def call(message: Any, delivery: Delivery) -> Any:
                state = begin(delivery, base)
                try:
                    returned = handler(message, delivery)
                except BaseException as exc:
                    finish(state, timed, exc)
                    raise
                finish(state, timed, None)
                # A synchronous function returning an awaitable: the dispatcher awaits
                # it, outside the span (which covers the call itself).
                return returned

            traced.handler = call
        traced.is_async = route.is_async
        return traced

    def _begin(self, delivery: Delivery, base: dict[str, Any]) -> tuple[Any, Any, float]:
        """Open the process span of ``delivery`` and make it current: (span, token, start)."""
        tracer = self.tracer
        if tracer is None:
            return None, None, time.perf_counter()
        h = delivery.envelope.headers
        attributes = dict(base)
        attributes[A_MESSAGE_ID] = h.message_id
        attributes[A_CONVERSATION] = h.correlation_id or h.message_id
        attributes[A_SOURCE] = h.source_service
        attributes[A_DELIVERY_COUNT] = delivery.delivery_count
        if h.target_service:
            attributes[A_TARGET] = h.target_service
        parent = context_of(h.traceparent, h.tracestate) if h.traceparent else None
        span = tracer.start_span(
            f"process {h.routing_key}",
            context=parent if parent is not None else otel_context.Context(),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token, time.perf_counter()

    def _finish(
        self,
        state: tuple[Any, Any, float],
        timed: dict[bool, dict[str, str]],
        error: BaseException | None,
    ) -> None:
        span, token, started = state
        elapsed = time.perf_counter() - started
        if span is not None:
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            otel_context.detach(token)
            span.end()
        if self.duration is not None:
            self.duration.record(elapsed, timed[error is None])

    # -- metrics read on collection ------------------------------------------------------

    def _observe_count(
        self, read: Callable[[ConsumerStats], int]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(stats.total(read), {A_CHANNEL: channel, A_GROUP: group})
                for (channel, group), stats in list(self._stats.items())
            ]

        return observe

    def _observe_published(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {A_ROUTING_KEY: key, A_KIND: kind, A_SOURCE: source})
            for (key, kind, source), count in list((self.published or {}).items())
        ]

    def _observe_reading(self, key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(reading[key], {A_CHANNEL: channel, A_GROUP: group})
                for (channel, group), reading in list(self._readings.items())
                if key in reading
            ]

        return observe

    def _watch(self, consumer: Consumer) -> None:
        key = (id(consumer.transport), consumer.channel)
        self._watched[key] = (consumer.transport, consumer.channel, weakref.ref(consumer))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """Read each watched channel's status every ``status_interval`` seconds, while a
        consumer of it is open; the gauges report the last reading."""
        while not self._closed:
            for key, (transport, channel, ref) in list(self._watched.items()):
                consumer = ref()
                if consumer is None or consumer.closed:
                    del self._watched[key]
                    continue
                await self.read_status(transport, channel)
            if not self._watched:
                return
            await asyncio.sleep(self.status_interval)

    async def read_status(self, transport: ReportsStatus, channel: str) -> None:
        """Read one channel's status now, for the gauges."""
        try:
            status = await transport.status(channel)
        except (TransportError, OSError) as exc:
            log.debug("could not read the status of %s: %s", channel, exc)
            return
        except Exception as exc:
            log.warning("could not read the status of %s: %s", channel, exc)
            return
        for group in status.groups:
            reading = {"retrying": group.retrying}
            if group.lag is not None:
                reading["lag"] = group.lag
            if group.pending_known:
                reading["pending"] = group.pending
            self._readings[(channel, group.name)] = reading

    def close(self) -> None:
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None


#: (metric, how to read it from a consumer's stats, description)
_COUNTS: Final[tuple[tuple[str, Callable[[ConsumerStats], int], str], ...]] = (
    ("toolkit.messages.handled", lambda s: s.handled, "Messages whose handler returned"),
    (
        "toolkit.messages.skipped",
        lambda s: s.skipped,
        "Events acknowledged without a handler (not subscribed here)",
    ),
    (
        "toolkit.messages.failed",
        lambda s: s.failed + s.retried,
        "Handler calls that raised (each attempt)",
    ),
    (
        "toolkit.messages.retried",
        lambda s: s.retried,
        "Failed messages scheduled for another attempt",
    ),
    (
        "toolkit.messages.dead_lettered",
        lambda s: s.rejected + s.failed,
        "Messages dead-lettered: rejected at once, or failed on the last attempt",
    ),
)
#: (metric, key of a status reading, description)
_GAUGES: Final = (
    ("toolkit.consumer.lag", "lag", "Messages of the channel not yet delivered to the group"),
    ("toolkit.consumer.pending", "pending", "Messages delivered to the group and not yet settled"),
    ("toolkit.consumer.retrying", "retrying", "Pending messages waiting for a retry"),
)
