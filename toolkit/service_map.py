"""The service map: which channel each command and event goes to.

Generated code builds one :class:`ServiceMap` from the schemas as plain data;
nothing here reads schema files.

Key patterns: ``*`` matches any run of one or more characters, dots
included, so ``user.*`` matches ``user.registered`` and
``user.billing.changed`` but not ``user`` or ``ticket.created``; a pattern
without ``*`` matches only itself. Matching is done once per (routing key,
publishing service) and cached; no regular expression runs per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

__all__ = [
    "ChannelSpec",
    "EventRoute",
    "KeyPattern",
    "ServiceMap",
    "UnknownServiceError",
]

ChannelKind = Literal["queue", "stream"]


class UnknownServiceError(LookupError):
    """A command addressed to a service the map does not know; nothing was sent."""

    def __init__(self, service: str, known: Iterable[str]) -> None:
        self.service = service
        known_list = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"no channel is mapped for service {service!r}: it accepts no commands in the "
            f"service map (services that do: {known_list})"
        )


class ChannelSpec(msgspec.Struct, frozen=True):
    """A channel and the services that consume it (one consumer group each)."""

    name: str
    kind: ChannelKind
    consumers: tuple[str, ...]
    description: str = ""


class EventRoute(msgspec.Struct, frozen=True):
    """Events whose key matches one of ``keys`` go to ``channel``, for ``subscriber``."""

    channel: str
    subscriber: str
    keys: tuple[str, ...]
    include_publishers: tuple[str, ...] | None = None
    exclude_publishers: tuple[str, ...] | None = None

    def accepts_publisher(self, publisher: str) -> bool:
        if self.include_publishers is not None:
            return publisher in self.include_publishers
        if self.exclude_publishers is not None:
            return publisher not in self.exclude_publishers
        return True


class KeyPattern:
    """A routing-key pattern compiled once into literal pieces (no regex)."""

    __slots__ = ("_pieces", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._pieces = text.split("*")

    def matches(self, key: str) -> bool:
        pieces = self._pieces
        if len(pieces) == 1:
            return key == self.text
        first, last = pieces[0], pieces[-1]
        if not key.startswith(first):
            return False
        pos = len(first)
        end = len(key) - len(last)
        if end < pos or not key.endswith(last):
            return False
        # Each '*' must take at least one character.
        pos += 1
        for middle in pieces[1:-1]:
            found = key.find(middle, pos, end)
            if found < 0:
                return False
            pos = found + len(middle) + 1
        return pos <= end


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
    ) -> None:
        self.channels: dict[str, ChannelSpec] = {c.name: c for c in channels}
        self.command_routes: dict[str, str] = dict(command_routes)
        self.event_routes: tuple[EventRoute, ...] = tuple(event_routes)
        #: routing key -> owning service, for commands and events declared in schemas
        self.commands: dict[str, str] = dict(commands or {})
        self.events: dict[str, str] = dict(events or {})
        self._compiled = [
            (route, tuple(KeyPattern(k) for k in route.keys)) for route in self.event_routes
        ]
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
        found = {
            route.channel
            for route, patterns in self._compiled
            if route.accepts_publisher(publisher) and any(p.matches(routing_key) for p in patterns)
        }
        result = tuple(sorted(found))
        self._event_cache[cache_key] = result
        return result

    def channels_consumed_by(self, service: str) -> tuple[ChannelSpec, ...]:
        return tuple(c for c in self.channels.values() if service in c.consumers)

    @property
    def services(self) -> tuple[str, ...]:
        names = set(self.commands.values()) | set(self.events.values())
        for channel in self.channels.values():
            names.update(channel.consumers)
        return tuple(sorted(names))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServiceMap):
            return NotImplemented
        return (
            self.channels == other.channels
            and self.command_routes == other.command_routes
            and self.event_routes == other.event_routes
            and self.commands == other.commands
            and self.events == other.events
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ServiceMap(channels={sorted(self.channels)!r}, command_routes={self.command_routes!r}, "
            f"event_routes={len(self.event_routes)})"
        )
