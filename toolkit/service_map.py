"""The service map: which channel each command and event goes to.

Generated code builds one :class:`ServiceMap` from the schemas as plain data;
nothing here reads schema files. The matching rules live in
:mod:`toolkit.routing`; here they are applied once per (routing key,
publishing service) and cached, so nothing is matched per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from toolkit.priority import check_priority
from toolkit.routing import ChannelSpec, EventRoute, KeyPattern, ServiceSpec, event_channels

__all__ = [
    "ChannelSpec",
    "EventRoute",
    "KeyPattern",
    "ServiceMap",
    "ServiceSpec",
    "UnknownServiceError",
]


class UnknownServiceError(LookupError):
    """A command addressed to a service the map has no command channel for, or a bus
    for a service (``sender``) the map does not know; nothing was sent."""

    def __init__(self, service: str, known: Iterable[str], *, sender: bool = False) -> None:
        self.service = service
        known_list = ", ".join(sorted(known)) or "none"
        if sender:
            message = (
                f"no service {service!r} in the service map: a bus sends as one of its "
                f"services ({known_list})"
            )
        else:
            message = (
                f"no channel is mapped for service {service!r}: it accepts no commands in the "
                f"service map (services that do: {known_list})"
            )
        super().__init__(message)


class ServiceMap:
    """Routing data for the whole system, with the lookups the bus needs."""

    def __init__(
        self,
        *,
        channels: Iterable[ChannelSpec],
        command_routes: Mapping[str, str],
        event_routes: Iterable[EventRoute],
        commands: Mapping[str, str] | None = None,
        events: Mapping[str, str] | None = None,
        services: Iterable[ServiceSpec] = (),
        priorities: Mapping[str, int] | None = None,
    ) -> None:
        self.channels: dict[str, ChannelSpec] = {c.name: c for c in channels}
        self.command_routes: dict[str, str] = dict(command_routes)
        self.event_routes: tuple[EventRoute, ...] = tuple(event_routes)
        #: routing key -> owning service, for commands and events declared in schemas
        self.commands: dict[str, str] = dict(commands or {})
        self.events: dict[str, str] = dict(events or {})
        #: routing key -> the priority its messages get unless a send says otherwise
        #: (``priority`` in the owner's schema); keys not listed get 0
        self.priorities: dict[str, int] = {
            k: check_priority(v) for k, v in (priorities or {}).items() if v
        }
        # Every service named anywhere in the map is one; ``services`` adds those named
        # nowhere else (one that only sends commands, say) and says more about each.
        named = {*self.commands.values(), *self.events.values(), *self.command_routes}
        for channel in self.channels.values():
            named.update(channel.consumers)
        specs = {s.name: s for s in services}
        self._services: dict[str, ServiceSpec] = {
            name: specs.get(name) or ServiceSpec(name) for name in sorted(named | specs.keys())
        }
        self._event_cache: dict[tuple[str, str], tuple[str, ...]] = {}

    def command_channel(self, target_service: str) -> str:
        try:
            return self.command_routes[target_service]
        except KeyError:
            raise UnknownServiceError(target_service, self.command_routes) from None

    def event_channels(self, routing_key: str, publisher: str) -> tuple[str, ...]:
        """Channels an event goes to, each once, in name order; cached per (key, publisher)."""
        cache_key = (routing_key, publisher)
        cached = self._event_cache.get(cache_key)
        if cached is not None:
            return cached
        result = event_channels(self.event_routes, routing_key, publisher)
        self._event_cache[cache_key] = result
        return result

    def channels_consumed_by(self, service: str) -> tuple[ChannelSpec, ...]:
        return tuple(c for c in self.channels.values() if service in c.consumers)

    @property
    def services(self) -> tuple[str, ...]:
        """Every service of the system, in name order."""
        return tuple(self._services)

    def service(self, name: str) -> ServiceSpec:
        """The service a bus sends as; UnknownServiceError when the map does not know it."""
        try:
            return self._services[name]
        except KeyError:
            raise UnknownServiceError(name, self._services, sender=True) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServiceMap):
            return NotImplemented
        return (
            self.channels == other.channels
            and self.command_routes == other.command_routes
            and self.event_routes == other.event_routes
            and self.commands == other.commands
            and self.events == other.events
            and self._services == other._services
            and self.priorities == other.priorities
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ServiceMap(channels={sorted(self.channels)!r}, command_routes={self.command_routes!r}, "
            f"event_routes={len(self.event_routes)})"
        )
