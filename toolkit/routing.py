"""Routing vocabulary: channels, event routes and routing-key patterns.

A leaf module: it imports nothing else of the toolkit, so the generator and
the docs back-ends use exactly the matching rules the runtime uses.

Key patterns: ``*`` matches any run of one or more characters, dots
included, so ``user.*`` matches ``user.registered`` and
``user.billing.changed`` but not ``user`` or ``ticket.created``; a pattern
without ``*`` matches only itself. Patterns are split into literal pieces
once; no regular expression runs per message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import msgspec

__all__ = [
    "ChannelKind",
    "ChannelSpec",
    "EventRoute",
    "KeyPattern",
    "ServiceSpec",
    "event_channels",
    "publisher_filter",
]

ChannelKind = Literal["queue", "stream"]


class ChannelSpec(msgspec.Struct, frozen=True):
    """A channel and the services that consume it (one consumer group each)."""

    name: str
    kind: ChannelKind
    consumers: tuple[str, ...]
    description: str = ""


class ServiceSpec(msgspec.Struct, frozen=True):
    """A service of the system: one a bus may send as."""

    name: str
    #: metadata keys that a message sent from inside one of its handlers takes over
    #: from the message being handled (``[service] propagate`` in its schema)
    propagate: tuple[str, ...] = ()


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

    def matches_key(self, routing_key: str) -> bool:
        """True when one of ``keys`` matches ``routing_key``, whoever publishes it."""
        return any(KeyPattern(p).matches(routing_key) for p in self.keys)

    def matches(self, routing_key: str, publisher: str) -> bool:
        """True when an event ``routing_key`` published by ``publisher`` takes this route."""
        return self.accepts_publisher(publisher) and self.matches_key(routing_key)


def event_channels(
    routes: Iterable[EventRoute], routing_key: str, publisher: str
) -> tuple[str, ...]:
    """The channels an event reaches, each once, in name order.

    The one definition of event fan-out: the runtime caches its result per
    (key, publisher); the generator and the docs call it directly.
    """
    return tuple(sorted({r.channel for r in routes if r.matches(routing_key, publisher)}))


def publisher_filter(routes: Sequence[EventRoute]) -> Callable[[str], bool] | None:
    """Whether some of ``routes`` accepts an event's publisher, as one set lookup.

    None when every publisher is accepted. The consumer of a channel calls it
    with each event's ``source_service``: the filters hold against envelopes
    that did not come through a bus, not only when publishing.
    """
    if not routes or any(
        r.include_publishers is None and r.exclude_publishers is None for r in routes
    ):
        return None if routes else _nobody
    allowed = frozenset(p for r in routes for p in r.include_publishers or ())
    excluded = [frozenset(r.exclude_publishers) for r in routes if r.exclude_publishers is not None]
    if not excluded:
        return allowed.__contains__
    # Accepted by an include list, or left out of some exclude list.
    denied = frozenset.intersection(*excluded) - allowed
    return lambda publisher: publisher not in denied


def _nobody(publisher: str) -> bool:
    return False
