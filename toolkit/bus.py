"""The distributed bus: sends commands and publishes events through the service map."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import msgspec

from toolkit import telemetry
from toolkit.channels.base import Delivery, ExpectsGroups, SyncTransport, Transport
from toolkit.context import CURRENT_DELIVERY
from toolkit.envelope import COMMAND, EVENT, JSON, Envelope, Headers, Kind, new_message_id
from toolkit.priority import PrioritiesUnsupportedError, check_priority
from toolkit.priority import unsupported as no_priorities
from toolkit.publish_result import PartialPublishError, PublishResult, raise_partial
from toolkit.scheduling import SchedulingUnsupportedError, due_ms, unsupported
from toolkit.service_map import ServiceMap

__all__ = [
    "DistributedBus",
    "PartialPublishError",
    "PrioritiesUnsupportedError",
    "PublishResult",
    "SchedulingUnsupportedError",
    "SyncDistributedBus",
    "publisher_bus",
    "sync_publisher_bus",
]

log = logging.getLogger("toolkit.bus")

_encode: Final = msgspec.json.Encoder().encode
_handled: Final = CURRENT_DELIVERY.get


class _Sender:
    """Routing and envelope building shared by the async and the sync bus."""

    def __init__(self, service: str, service_map: ServiceMap) -> None:
        # A name the map does not know would be stamped as source_service on every message.
        spec = service_map.service(service)
        self.service = service
        #: metadata keys a message sent while handling another takes over from it
        self.propagate = spec.propagate
        self.service_map = service_map
        self._priorities = service_map.priorities
        #: events published that matched no subscription, by routing key
        self.unrouted: dict[str, int] = {}
        # Routing per key for this publisher, computed once per key.
        self._event_routes: dict[str, tuple[str, ...]] = {}

    def _event_channels(self, routing_key: str) -> tuple[str, ...]:
        channels = self._event_routes.get(routing_key)
        if channels is None:
            channels = self._event_routes[routing_key] = self.service_map.event_channels(
                routing_key, self.service
            )
        if not channels:
            self.unrouted[routing_key] = self.unrouted.get(routing_key, 0) + 1
            log.debug(
                "event %s from %s matched no subscription; nothing sent", routing_key, self.service
            )
        return channels

    def _due(self, delay: timedelta | float | None, deliver_at: datetime | None) -> int:
        """The ``deliver_at_ms`` header; refuses a due time the transport cannot hold."""
        due = due_ms(delay, deliver_at)
        transport = getattr(self, "transport", None)
        if due and not getattr(transport, "schedules_messages", False):
            raise SchedulingUnsupportedError(unsupported(type(transport).__name__))
        return due

    def _priority(self, routing_key: str, priority: int | None) -> int:
        """The ``priority`` header: the given one, else the key's schema default; refuses a
        priority the transport cannot order by."""
        p = self._priorities.get(routing_key, 0) if priority is None else check_priority(priority)
        if p:
            transport = getattr(self, "transport", None)
            if not getattr(transport, "prioritizes_messages", False):
                raise PrioritiesUnsupportedError(no_priorities(type(transport).__name__))
        return p

    def _command(
        self,
        target_service: str,
        routing_key: str,
        body: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None,
        caused_by: Delivery | None,
        message_id: str | None,
        due: int = 0,
        priority: int | None = None,
    ) -> tuple[str, Envelope]:
        """The target's channel and the command's envelope; raises before anything is sent."""
        channel = self.service_map.command_channel(target_service)
        envelope = self._envelope(
            routing_key,
            COMMAND,
            target_service,
            body,
            content_type,
            metadata,
            caused_by,
            message_id,
            due,
            self._priority(routing_key, priority),
        )
        return channel, envelope

    def _envelope(
        self,
        routing_key: str,
        kind: Kind,
        target: str,
        body: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None,
        caused_by: Delivery | None,
        message_id: str | None = None,
        due: int = 0,
        priority: int = 0,
    ) -> Envelope:
        if message_id is None:
            message_id = new_message_id()
        elif not message_id or not isinstance(message_id, str):
            raise ValueError(f"message_id must be a non-empty string, not {message_id!r}")
        meta = dict(metadata) if metadata else {}
        if caused_by is None:
            caused_by = _handled()  # inside a handler: the message it handles
        if caused_by is not None:
            handled = caused_by.envelope.headers
            correlation_id = handled.correlation_id or handled.message_id
            causation_id = handled.message_id
            if self.propagate and handled.metadata:
                carried = handled.metadata
                # Given metadata wins over what is carried on.
                meta = {k: carried[k] for k in self.propagate if k in carried} | meta
        else:
            correlation_id, causation_id = message_id, ""
        envelope = Envelope(
            Headers(
                message_id,
                routing_key,
                kind,
                self.service,
                time.time_ns() // 1_000_000,
                target,
                content_type,
                correlation_id,
                causation_id,
                meta,
                deliver_at_ms=due,
                priority=priority,
            ),
            body,
        )
        if telemetry.ACTIVE is not None:  # off: this check is all tracing costs
            return telemetry.ACTIVE.publishing(self, envelope, caused_by)
        return envelope


def expect_groups(transport: object, service_map: ServiceMap) -> None:
    """Tell a transport that wants to know (:class:`ExpectsGroups`) each channel's consumers."""
    if isinstance(transport, ExpectsGroups):
        for name, spec in service_map.channels.items():
            transport.expect_groups(name, spec.consumers)


class DistributedBus(_Sender):
    """Sends on behalf of one service (``service``) through ``transport``.

    Inside a handler, a message sent carries the conversation on: the same
    correlation id as the message being handled, that message's id as
    causation id, and the metadata keys ``service`` propagates (given
    ``metadata`` wins); see :mod:`toolkit.context`. ``caused_by`` (a
    delivery) names the causing message instead. Pass ``message_id`` to send
    again what an earlier call may have stored (after a :class:`~toolkit.TransportError` or a
    :class:`PartialPublishError`): the copies then share one id.

    ``priority`` (0 to 9) overrides the routing key's schema default (0 when the
    schema gives none); a consumer with a backlog takes higher priorities first.
    ``delay`` / ``deliver_at`` schedule the message (docs/delivery.md).

    An event for several channels is sent to each of them, whatever the others
    answer; when some store it and others fail, :class:`PartialPublishError`
    says which.
    """

    def __init__(self, service: str, service_map: ServiceMap, transport: Transport) -> None:
        super().__init__(service, service_map)
        self.transport = transport
        expect_groups(transport, service_map)

    async def send_command(
        self,
        target_service: str,
        routing_key: str,
        command: Any,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> str:
        """Send a command to ``target_service``'s channel; returns the message id.

        Raises :class:`~toolkit.service_map.UnknownServiceError` before sending
        anything when the service map has no channel for the target.
        """
        return await self.send_command_raw(
            target_service,
            routing_key,
            _encode(command),
            JSON,
            metadata,
            caused_by=caused_by,
            message_id=message_id,
            delay=delay,
            deliver_at=deliver_at,
            priority=priority,
        )

    async def send_command_raw(
        self,
        target_service: str,
        routing_key: str,
        body: bytes,
        content_type: str = JSON,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> str:
        due = self._due(delay, deliver_at) if delay is not None or deliver_at is not None else 0
        channel, envelope = self._command(
            target_service,
            routing_key,
            body,
            content_type,
            metadata,
            caused_by,
            message_id,
            due,
            priority,
        )
        await self.transport.send(channel, (envelope,))
        return envelope.headers.message_id

    async def publish_event(
        self,
        routing_key: str,
        event: Any,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> PublishResult:
        """Publish once to every channel with a matching subscription."""
        # Inlined rather than delegating to publish_event_raw: this is the hot path.
        channels = self._event_routes.get(routing_key) or self._event_channels(routing_key)
        due = self._due(delay, deliver_at) if delay is not None or deliver_at is not None else 0
        # No schema default anywhere and none given: 0 without a call.
        prio = (
            0
            if priority is None and not self._priorities
            else self._priority(routing_key, priority)
        )
        envelope = self._envelope(
            routing_key,
            EVENT,
            "",
            _encode(event),
            JSON,
            metadata,
            caused_by,
            message_id,
            due,
            prio,
        )
        batch = (envelope,)
        if len(channels) == 1:
            await self.transport.send(channels[0], batch)
        elif channels:
            await self._send_to_all(routing_key, channels, batch)
        return PublishResult(envelope.headers.message_id, channels)

    async def publish_event_raw(
        self,
        routing_key: str,
        body: bytes,
        content_type: str = JSON,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> PublishResult:
        """Publish a body that is already encoded (``content_type`` says how)."""
        channels = self._event_channels(routing_key)
        due = self._due(delay, deliver_at) if delay is not None or deliver_at is not None else 0
        envelope = self._envelope(
            routing_key,
            EVENT,
            "",
            body,
            content_type,
            metadata,
            caused_by,
            message_id,
            due,
            self._priority(routing_key, priority),
        )
        await self._send_to_all(routing_key, channels, (envelope,))
        return PublishResult(envelope.headers.message_id, channels)

    async def publish_events(
        self,
        routing_key: str,
        events: Iterable[Any],
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> list[PublishResult]:
        """Publish many events of one key: one send (one round trip) per channel.

        Each event is its own message with its own id; order is kept.
        """
        channels = self._event_channels(routing_key)
        due = self._due(delay, deliver_at) if delay is not None or deliver_at is not None else 0
        prio = self._priority(routing_key, priority)
        envelopes = [
            self._envelope(
                routing_key, EVENT, "", _encode(event), JSON, metadata, caused_by, None, due, prio
            )
            for event in events
        ]
        if envelopes:
            await self._send_to_all(routing_key, channels, envelopes)
        return [PublishResult(e.headers.message_id, channels) for e in envelopes]

    async def _send_to_all(
        self, routing_key: str, channels: tuple[str, ...], envelopes: Sequence[Envelope]
    ) -> None:
        # One after another (concurrent publishes still coalesce per channel);
        # every channel is tried whatever another one answered.
        failed: dict[str, Exception] | None = None
        for channel in channels:
            try:
                await self.transport.send(channel, envelopes)
            except Exception as exc:
                if len(channels) == 1:
                    raise
                failed = failed or {}
                failed[channel] = exc
        if failed:
            raise_partial(routing_key, envelopes, channels, failed)


class SyncDistributedBus(_Sender):
    """The same sending API without asyncio, for synchronous applications.

    Routing, headers and errors are exactly those of :class:`DistributedBus`.
    """

    def __init__(self, service: str, service_map: ServiceMap, transport: SyncTransport) -> None:
        super().__init__(service, service_map)
        self.transport = transport
        expect_groups(transport, service_map)

    def send_command(
        self,
        target_service: str,
        routing_key: str,
        command: Any,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> str:
        return self.send_command_raw(
            target_service,
            routing_key,
            _encode(command),
            JSON,
            metadata,
            caused_by=caused_by,
            message_id=message_id,
            delay=delay,
            deliver_at=deliver_at,
            priority=priority,
        )

    def send_command_raw(
        self,
        target_service: str,
        routing_key: str,
        body: bytes,
        content_type: str = JSON,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> str:
        due = self._due(delay, deliver_at) if delay is not None or deliver_at is not None else 0
        channel, envelope = self._command(
            target_service,
            routing_key,
            body,
            content_type,
            metadata,
            caused_by,
            message_id,
            due,
            priority,
        )
        self.transport.send_sync(channel, (envelope,))
        return envelope.headers.message_id

    def publish_event(
        self,
        routing_key: str,
        event: Any,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> PublishResult:
        return self.publish_event_raw(
            routing_key,
            _encode(event),
            JSON,
            metadata,
            caused_by=caused_by,
            message_id=message_id,
            delay=delay,
            deliver_at=deliver_at,
            priority=priority,
        )

    def publish_event_raw(
        self,
        routing_key: str,
        body: bytes,
        content_type: str = JSON,
        metadata: Mapping[str, str] | None = None,
        *,
        caused_by: Delivery | None = None,
        message_id: str | None = None,
        delay: timedelta | float | None = None,
        deliver_at: datetime | None = None,
        priority: int | None = None,
    ) -> PublishResult:
        channels = self._event_channels(routing_key)
        due = self._due(delay, deliver_at) if delay is not None or deliver_at is not None else 0
        envelope = self._envelope(
            routing_key,
            EVENT,
            "",
            body,
            content_type,
            metadata,
            caused_by,
            message_id,
            due,
            self._priority(routing_key, priority),
        )
        batch = (envelope,)
        failed: dict[str, Exception] | None = None
        for channel in channels:  # every one is tried, as by DistributedBus
            try:
                self.transport.send_sync(channel, batch)
            except Exception as exc:
                if len(channels) == 1:
                    raise
                failed = failed or {}
                failed[channel] = exc
        if failed:
            raise_partial(routing_key, batch, channels, failed)
        return PublishResult(envelope.headers.message_id, channels)


_Bus = TypeVar("_Bus", DistributedBus, SyncDistributedBus)


def publisher_bus(
    service: str, service_map: ServiceMap, via: DistributedBus | Transport
) -> DistributedBus:
    """The bus a generated publisher of ``service`` sends through.

    ``via`` is a transport, on which a bus for ``service`` and ``service_map``
    is built, or a bus, which must send as ``service``.
    """
    if isinstance(via, _Sender):
        return _own_bus(service, via, DistributedBus)
    return DistributedBus(service, service_map, via)


def sync_publisher_bus(
    service: str, service_map: ServiceMap, via: SyncDistributedBus | SyncTransport
) -> SyncDistributedBus:
    """:func:`publisher_bus` for the synchronous publishers."""
    if isinstance(via, _Sender):
        return _own_bus(service, via, SyncDistributedBus)
    return SyncDistributedBus(service, service_map, via)


def _own_bus(service: str, bus: _Sender, kind: type[_Bus]) -> _Bus:
    if not isinstance(bus, kind):
        raise TypeError(
            f"the publisher of {service!r} needs a {kind.__name__} or a transport, "
            f"not a {type(bus).__name__}"
        )
    # A bus of another service would stamp its name as source_service on every message.
    if bus.service != service:
        raise ValueError(
            f"the publisher of {service!r} was given the bus of {bus.service!r}; pass a "
            f"transport (the publisher builds its own bus) or a bus of {service!r}"
        )
    return bus
