"""Scheduled messages on RabbitMQ without a plugin: a cascade of fixed-TTL wait queues.

A message due ``D`` milliseconds from now (the sender's clock) waits in the
levels of the binary decomposition of ``D``: level ``k`` is a quorum queue
whose message TTL is :data:`LEVEL_MS`\\ ``[k]`` (``2**k`` ms for ``k`` < 32;
the levels above repeat ``2**31`` ms, for due times beyond 49.7 days). Each
level has a topic exchange of the same name. The routing key holds one word
per level, lowest first (``1`` if the message waits there, else ``0``),
then the channel's word::

    D = 13 ms  ->  "1.0.1.1.<channel>", published to level 3's exchange

Level ``k``'s exchange routes on word ``k``: ``1`` into its queue, ``0`` on to
level ``k-1``'s exchange (level 0's: to the end exchange). A queue dead-letters
what expires (``at-least-once``: it leaves only once the next hop has it) to
the next level's exchange, with the routing key unchanged, so each message
walks down the levels and waits in exactly those whose bit is set: ``D`` ms in
all, never less (each TTL counts from its arrival in that queue). The end
exchange (``<prefix>:scheduled``) is bound to each channel's fanout exchange
by ``#.<channel word>``, and to its priority exchange by ``#.<channel word>%P``
(the word a message of priority 1..9 carries: ``%`` is escaped in a channel's
word, so no channel's word ends so): the message joins the channel as if sent
then, and every group of the channel gets it, in its priority's queue. The cascade is the prefix's, shared by
its channels; levels are declared on first need, up to the highest a send
uses.

It is all on the broker: durable and replicated (quorum), delivered whether
or not any consumer runs. The waiting messages cannot be read back (AMQP has
no browsing), so :meth:`RabbitSchedules.scheduled` and
:meth:`RabbitSchedules.cancel_scheduled` refuse with
:class:`~toolkit.scheduling.ScheduledUnlistedError`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from toolkit.channels.base import ScheduledMessage, TransportError
from toolkit.channels.rabbitmq.errors import is_transient, unavailable
from toolkit.channels.rabbitmq.link import Link, Outgoing
from toolkit.channels.rabbitmq.names import ChannelNames, scheduled_exchange, scheduled_level
from toolkit.scheduling import ScheduledUnlistedError, unlisted
from toolkit.wire import F_PRIORITY

__all__ = [
    "DOC",
    "LEVEL_MS",
    "MAX_DELAY_MS",
    "RabbitSchedules",
    "channel_word",
    "check_delays",
    "route",
]

#: where the docs say what RabbitMQ does with scheduled messages
DOC: Final = "docs/rabbitmq.md#scheduled-messages"
#: the wait of each level (ms): powers of two up to 2**31 (the longest TTL the retry
#: queues use too), then 16 more of 2**31 for due times up to about 447 days ahead
LEVEL_MS: Final[tuple[int, ...]] = tuple(2**k for k in range(32)) + (2**31,) * 16
#: the longest delay the cascade holds (ms)
MAX_DELAY_MS: Final = sum(LEVEL_MS)

_ESCAPES: Final = str.maketrans({"%": "%25", ".": "%2E", "*": "%2A", "#": "%23"})
#: a routing key's limit (bytes)
_MAX_KEY: Final = 255
#: the end of the channel's word in the routing key of a message of priority 1..9
_PRIORITIZED: Final = "%P"


def channel_word(channel: str) -> str:
    """The channel as one word of a topic routing key: no dot, no wildcard word."""
    return channel.translate(_ESCAPES)


def route(delay_ms: int, word: str) -> tuple[int, str]:
    """The level a message waiting ``delay_ms`` (> 0) enters at, and its routing key."""
    bits: list[str] = []
    left = delay_ms
    top = 0
    for level in range(len(LEVEL_MS) - 1, -1, -1):
        if left >= LEVEL_MS[level]:
            left -= LEVEL_MS[level]
            if not bits:
                top = level
                bits = ["0"] * (level + 1)
            bits[level] = "1"
    if left or not bits:
        raise ValueError(f"cannot hold a message {delay_ms} ms (at most {MAX_DELAY_MS})")
    return top, ".".join(bits) + "." + word


def check_delays(channel: str, due_ms: Sequence[int], now_ms: int) -> None:
    """Raise ``ValueError`` (before anything is sent) for a due time the cascade cannot
    hold, or a channel name too long for its routing keys."""
    latest = max(due_ms) - now_ms
    if latest > MAX_DELAY_MS:
        raise ValueError(
            f"RabbitMQ holds a scheduled message at most {MAX_DELAY_MS // 86_400_000} days; "
            f"this one on {channel!r} is due in {latest / 86_400_000:.0f} days; see {DOC}"
        )
    if len(channel_word(channel).encode()) + len(_PRIORITIZED) + 2 * len(LEVEL_MS) > _MAX_KEY:
        raise ValueError(f"channel name {channel!r} is too long to schedule on RabbitMQ; see {DOC}")


def _level_arguments(prefix: str, level: int) -> dict[str, Any]:
    after = scheduled_level(prefix, level - 1) if level else scheduled_exchange(prefix)
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": LEVEL_MS[level],
        "x-dead-letter-exchange": after,
        # Quorum queues dead-letter at least once with this (3.10+): a message leaves
        # a level only once the next hop has it, so a restart loses none on the way.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


class RabbitSchedules:
    """Implements Schedules' sending side for
    :class:`~toolkit.channels.rabbitmq.RabbitTransport` (a base class of it: uses its
    connection and declarations); listing and cancelling are refused."""

    link: Link
    prefix: str
    _made_queues: set[str]
    _made_exchanges: set[str]

    #: the bus lets ``delay=`` / ``deliver_at=`` through
    schedules_messages = True
    #: ``scheduled`` and ``cancel_scheduled`` refuse (without I/O): the command line
    #: says so without connecting first
    lists_scheduled = False

    # The transport's (declared here for the type checker).
    def _fresh(self) -> set[str]:
        raise NotImplementedError

    def _deadline(self) -> Any:
        raise NotImplementedError

    async def admin_channel(self) -> Any:
        raise NotImplementedError

    async def scheduled(self, channel: str, *, count: int | None = None) -> list[ScheduledMessage]:
        raise ScheduledUnlistedError(unlisted("RabbitMQ", DOC))

    async def cancel_scheduled(self, channel: str, message_ids: Sequence[str]) -> int:
        raise ScheduledUnlistedError(unlisted("RabbitMQ", DOC))

    async def scheduled_outgoing(
        self, names: ChannelNames, messages: Sequence[tuple[dict[str, Any], bytes]], dues: list[int]
    ) -> list[Outgoing]:
        """What to publish for a batch holding scheduled messages: those due later into
        the cascade, the others (due already) straight to the channel, in order."""
        word = channel_word(names.channel)
        prioritized = word + _PRIORITIZED
        now = time.time_ns() // 1_000_000
        top = max((route(due - now, word)[0] for due in dues if due > now), default=-1)
        if top >= 0:
            await self._ensure_cascade(names, word, top)
        # The delays count from now, after declaring: a floor of the clock in ms makes
        # each at least the time left, so nothing arrives early.
        now = time.time_ns() // 1_000_000
        outgoing: list[Outgoing] = []
        for (headers, body), due in zip(messages, dues, strict=True):
            urgent = F_PRIORITY in headers
            if due > now:
                level, key = route(due - now, prioritized if urgent else word)
                outgoing.append((scheduled_level(self.prefix, level), key, headers, body, None))
            else:
                exchange = names.prioritized if urgent else names.exchange
                outgoing.append((exchange, "", headers, body, None))
        return outgoing

    async def _ensure_cascade(self, names: ChannelNames, word: str, top: int) -> None:
        """Declare the levels up to ``top`` (lowest first: each level's ``0`` binding
        needs the one below) and the end's binding to the channel, once per connection."""
        declared = self._fresh()
        end = scheduled_exchange(self.prefix)
        binding = f"{end} -> {names.exchange}"
        try:
            async with self._deadline():
                admin = await self.admin_channel()
                if end not in declared:
                    await admin.exchange_declare(end, exchange_type="topic", durable=True)
                    self._made_exchanges.add(end)
                    declared.add(end)
                for level in range(top + 1):
                    name = scheduled_level(self.prefix, level)
                    if name in declared:
                        continue
                    after = scheduled_level(self.prefix, level - 1) if level else end
                    skip = "*." * level
                    await admin.exchange_declare(name, exchange_type="topic", durable=True)
                    self._made_exchanges.add(name)
                    await admin.queue_declare(
                        name, durable=True, arguments=_level_arguments(self.prefix, level)
                    )
                    self._made_queues.add(name)
                    await admin.queue_bind(name, name, routing_key=f"{skip}1.#")
                    await admin.exchange_bind(after, name, routing_key=f"{skip}0.#")
                    declared.add(name)
                if binding not in declared:
                    await admin.exchange_bind(names.exchange, end, routing_key=f"#.{word}")
                    await admin.exchange_bind(
                        names.prioritized, end, routing_key=f"#.{word}{_PRIORITIZED}"
                    )
                    declared.add(binding)
        except TransportError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(
                    f"declaring the scheduled messages' queues of {names.channel!r}", exc
                ) from exc
            raise
