"""Priorities on Redis Streams: a stream per priority band, read before the channel's own.

A message sent with priority 0 (the default) goes to the channel's stream as
ever: a channel nobody sends priorities to has no other key and costs nothing
more. Priority p > 0 goes to the channel's *band* p, a stream of its own
(``tk:{orders}:p9``, :mod:`~toolkit.channels.redis.keys`: the channel's hash
tag, one slot) with its own retry and scheduled sets, sharing the channel's
dead letters and deduplication records. Equal priorities keep their order
(one stream each).

The first send to a band (per process) opens it (``OPEN_BAND``): every group
of the channel's stream, and every group the bus said will consume the channel
(:class:`~toolkit.channels.base.ExpectsGroups`), gets a group on the band at
its start, then the band joins the channel's set of bands. A message sent to a
band is therefore kept for every group, however late its consumers find it.

A :class:`PrioritizedSubscription` is a consumer of its group on the channel's
stream and on every band. While the channel has no band it is that one
subscription, its reads and acknowledgements unchanged but for a ``SCARD`` of
the set of bands written ahead of each read (:meth:`RedisSubscription.watch`):
a new band is seen at the next read. With bands, ``receive`` takes from the
highest band first, then the lower ones, the channel's stream last, one
non-blocking read each until the batch is full (each stream's acknowledgements
written ahead of its read); with nothing anywhere it
blocks briefly on the channel's stream and looks again. Each band is an
ordinary subscription: its pending entries are reclaimed, retried,
dead-lettered, renewed, trimmed and released like the channel's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from redis.commands.core import AsyncScript

from toolkit.channels.base import Delivery
from toolkit.channels.redis.errors import is_transient, unavailable
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.options import Channels
from toolkit.channels.redis.shards import close_all
from toolkit.envelope import Envelope

if TYPE_CHECKING:
    from toolkit.channels.redis.subscription import RedisSubscription
    from toolkit.channels.redis.transport import RedisTransport

__all__ = ["PrioritizedSubscription", "RedisBands", "by_priority"]

#: longest a consumer with bands blocks on the channel's stream before it looks at them again
_BAND_BLOCK: Final = 0.05


def by_priority(envelopes: Sequence[Envelope]) -> dict[int, list[Envelope]]:
    """The envelopes per priority, each in their order."""
    parts: dict[int, list[Envelope]] = {}
    for envelope in envelopes:
        parts.setdefault(envelope.headers.priority, []).append(envelope)
    return parts


class RedisBands:
    """Sending to priority bands for :class:`~toolkit.channels.redis.RedisTransport` (a
    base class of it: uses the transport's client, channel settings and senders);
    implements Prioritizes and ExpectsGroups."""

    prioritizes_messages = True
    _channels: Channels
    #: (channel or shard, priority) of the bands this transport opened
    _open_bands: set[tuple[str, int]]
    #: channel -> the groups the bus said will consume it (ExpectsGroups)
    _expected: dict[str, tuple[str, ...]]
    _open_band: AsyncScript

    if TYPE_CHECKING:

        async def _send_stream(self, name: str, envelopes: Sequence[Envelope]) -> None: ...

    async def _send_bands(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Each priority to its band (priority 0 to the stream itself), opened first."""
        parts = by_priority(envelopes)
        for priority in parts:
            if priority and (channel, priority) not in self._open_bands:
                await self.open_band(channel, priority)
        await asyncio.gather(
            *(self._send_stream(band_name(channel, p), part) for p, part in parts.items())
        )

    def expect_groups(self, channel: str, groups: Iterable[str]) -> None:
        """The groups that will consume ``channel``: each gets a group on a priority band
        as the band opens, before its first message (ExpectsGroups)."""
        self._expected[channel] = tuple(groups)

    async def open_band(self, channel: str, priority: int, groups: Sequence[str] = ()) -> None:
        """Make band ``priority`` of ``channel`` (or of a shard) known, with a group on it
        for every group of the channel, expected or asked for (``OPEN_BAND``)."""
        keys = self._channels.keys(channel)
        expected = self._expected.get(channel.partition("#")[0], ())
        try:
            await self._open_band(
                keys=[keys.stream, keys.band(priority), keys.bands],
                args=[priority, *expected, *groups],
            )
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"opening priority band {priority} of {channel!r}", exc) from exc
            raise
        self._open_bands.add((channel, priority))


class PrioritizedSubscription:
    """One consumer of a group on a channel's stream and its priority bands. Implements
    Subscription, DelayedRetry, RenewsLeases, AcksOnReceive, SettlesOnReceipt and
    Deduplicates, by the subscription of the stream each delivery came from.

    ``stream``: the subscription of the channel's (or shard's) own stream."""

    def __init__(self, transport: RedisTransport, main: RedisSubscription) -> None:
        self._transport = transport
        self._main = self.stream = main
        self.channel = main.channel
        self.group = main.group
        self.consumer = main.consumer
        self.options = main.options
        self.visibility_timeout = main.visibility_timeout
        #: the bands read, highest first (then ``_main``)
        self._bands: list[RedisSubscription] = []
        self._priorities: set[int] = set()
        #: the subscription each band delivery in hand came from (by identity: entry ids
        #: repeat across streams); a delivery not in it is the channel stream's
        self._owner: dict[int, RedisSubscription] = {}
        main.watch()

    async def ensure_group(self) -> None:
        await self._main.ensure_group()
        await self._discover()

    async def _discover(self) -> None:
        """Open a subscription on every band of the channel not read yet."""
        main = self._main
        listed = await self._transport.bands(main.keyed)
        for priority in sorted(set(listed) - self._priorities):
            await self._transport.open_band(main.keyed, priority, [self.group])
            sub = self._transport.band_subscription(main, priority)
            await sub.ensure_group()
            self._bands.append(sub)
            self._priorities.add(priority)
        self._bands.sort(key=lambda s: -s.priority)
        main.bands_known = len(self._priorities)

    # -- receiving ---------------------------------------------------------------------

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        return await self.receive_acking((), max_count, timeout)

    async def receive_acking(
        self, acked: Sequence[Delivery], max_count: int, timeout: float
    ) -> Sequence[Delivery]:
        """With bands: each stream's acknowledgements ride that stream's read."""
        main = self._main
        if not self._bands:
            found = await main.receive_acking(acked, max_count, timeout)
            if main.bands_listed != main.bands_known:
                await self._discover()
            return found
        owed = {id(sub): part for sub, part in self._parts(acked)}
        deadline = time.monotonic() + timeout
        while True:
            out: list[Delivery] = []
            for sub in self._bands:
                part = owed.pop(id(sub), [])
                got = await sub.receive_acking(part, max_count - len(out), 0)
                self._settled(part)
                for delivery in got:
                    self._owner[id(delivery)] = sub
                out += got
                if len(out) >= max_count:
                    await self._ack_owed(owed)
                    return out
            remaining = deadline - time.monotonic()
            wait = min(remaining, _BAND_BLOCK) if not out and remaining > 0 else 0
            part = owed.pop(id(main), [])
            out += await main.receive_acking(part, max_count - len(out), wait)
            self._settled(part)
            if main.bands_listed != main.bands_known:
                await self._discover()
            if out or time.monotonic() >= deadline:
                return out

    async def _ack_owed(self, owed: dict[int, list[Delivery]]) -> None:
        """Acknowledgements whose stream was not read this time."""
        for sub in (*self._bands, self._main):
            part = owed.pop(id(sub), None)
            if part:
                await sub.ack(part)
                self._settled(part)

    def _parts(
        self, deliveries: Sequence[Delivery]
    ) -> list[tuple[RedisSubscription, list[Delivery]]]:
        """``deliveries`` by the subscription of the stream each came from."""
        if not self._owner:
            return [(self._main, list(deliveries))] if deliveries else []
        owner = self._owner.get
        parts: dict[int, tuple[RedisSubscription, list[Delivery]]] = {}
        for delivery in deliveries:
            sub = owner(id(delivery)) or self._main
            parts.setdefault(id(sub), (sub, []))[1].append(delivery)
        return list(parts.values())

    def _of(self, delivery: Delivery) -> RedisSubscription:
        return self._owner.get(id(delivery)) or self._main

    def _settled(self, deliveries: Sequence[Delivery]) -> None:
        """Forget where settled deliveries came from: only once settled, so that settling
        again after a failure goes to the same stream (entry ids repeat across streams)."""
        if self._owner:
            for delivery in deliveries:
                self._owner.pop(id(delivery), None)

    # -- settling ----------------------------------------------------------------------

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for sub, part in self._parts(deliveries):
            await sub.ack(part)
            self._settled(part)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        await self._of(delivery).reject(delivery, reason, details)
        self._settled((delivery,))

    async def renew(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        lost: list[Delivery] = []
        for sub, part in self._parts(deliveries):
            lost += await sub.renew(part)
        return lost

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        await self._of(delivery).retry_later(delivery, delay)
        self._settled((delivery,))

    async def retries_waiting(self) -> int:
        return sum([await sub.retries_waiting() for sub in (*self._bands, self._main)])

    def settled_on_receipt(self) -> tuple[int, int]:
        dead, skipped = self._main.settled_on_receipt()
        for sub in self._bands:
            d, s = sub.settled_on_receipt()
            dead += d
            skipped += s
        return dead, skipped

    # -- deduplication: one record per group, whichever stream -------------------------

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        return await self._main.seen(deliveries)

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        # Each stream's records ride that stream's acknowledgement.
        for sub, part in self._parts(deliveries):
            await sub.remember(part, window)

    async def close(self) -> None:
        await close_all((*self._bands, self._main))
