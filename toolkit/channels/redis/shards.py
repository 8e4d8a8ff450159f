"""Sharded channels: one channel split over N streams, so that one hot channel can use
every master of a Redis Cluster.

Shard 0 is the channel's own stream (``tk:{orders}``), shard i > 0 a stream with a
hash tag of its own (``tk:{orders#i}``), so the shards spread over the slots.
A message goes to the shard its *partition key* picks: the ``partition_key``
entry of its headers' metadata when it has one (messages of one key keep
their order), else its message id (spread evenly, no order between
messages). Every consumer of a group reads every shard: one
:class:`ShardedSubscription` is a consumer in the group of each shard.

Going from 1 to N shards keeps the old stream as shard 0: nothing already
sent is left behind (see docs/redis.md, "Resharding a live channel").
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from toolkit.channels.base import Delivery, Subscription
from toolkit.envelope import Envelope

if TYPE_CHECKING:
    from toolkit.channels.redis.priorities import PrioritizedSubscription as RedisSubscription

__all__ = ["PARTITION_KEY", "ShardedSubscription", "close_all", "shard_name", "split"]

#: the metadata entry whose value picks a message's shard
PARTITION_KEY: Final = "partition_key"
#: longest a consumer blocks on one shard while the others may have work
_SHARD_BLOCK: Final = 0.05


def shard_name(channel: str, shard: int) -> str:
    """The name shard ``shard`` of ``channel`` is keyed by (``#`` cannot be in a channel name
    the schemas give: ``channel#i`` is no other channel's)."""
    return channel if shard == 0 else f"{channel}#{shard}"


def shard_of(envelope: Envelope, shards: int) -> int:
    key = envelope.headers.metadata.get(PARTITION_KEY) or envelope.headers.message_id
    return zlib.crc32(key.encode()) % shards


def split(channel: str, envelopes: Sequence[Envelope], shards: int) -> dict[str, list[Envelope]]:
    """The envelopes per shard, in their order."""
    parts: dict[str, list[Envelope]] = {}
    for envelope in envelopes:
        parts.setdefault(shard_name(channel, shard_of(envelope, shards)), []).append(envelope)
    return parts


class ShardedSubscription:
    """One consumer of a group on every shard of a channel (each with its priority
    bands). Implements Subscription, DelayedRetry, RenewsLeases, AcksOnReceive and
    Deduplicates like the subscription of one stream.

    ``receive`` reads the shards in turn, starting after the one that gave the
    last batch (no shard starves another); when none has anything it blocks
    briefly on one of them, in turn.
    """

    def __init__(self, shards: Sequence[RedisSubscription]) -> None:
        self._shards = list(shards)
        first = self._shards[0]
        self.channel = first.channel
        self.group = first.group
        self.consumer = first.consumer
        self.options = first.options
        self.visibility_timeout = first.visibility_timeout
        self._next = 0
        #: the shard each delivery in hand came from (by identity: entry ids repeat
        #: across streams)
        self._owner: dict[int, RedisSubscription] = {}

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        deadline = time.monotonic() + timeout
        n = len(self._shards)
        while True:
            for k in range(n):
                index = (self._next + k) % n
                shard = self._shards[index]
                found = await shard.receive(max_count, 0)
                if found:
                    self._next = index + 1
                    return self._own(shard, found)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            shard = self._shards[self._next % n]
            self._next += 1
            found = await shard.receive(max_count, min(remaining, _SHARD_BLOCK))
            if found:
                return self._own(shard, found)

    def _own(self, shard: RedisSubscription, found: Sequence[Delivery]) -> Sequence[Delivery]:
        for delivery in found:
            self._owner[id(delivery)] = shard
        return found

    def _by_shard(
        self, deliveries: Sequence[Delivery]
    ) -> dict[int, tuple[RedisSubscription, list[Delivery]]]:
        parts: dict[int, tuple[RedisSubscription, list[Delivery]]] = {}
        owner = self._owner.get
        for delivery in deliveries:
            shard = owner(id(delivery)) or self._shards[0]
            parts.setdefault(id(shard), (shard, []))[1].append(delivery)
        return parts

    def _settled(self, deliveries: Sequence[Delivery]) -> None:
        """Forget where settled deliveries came from: only once settled, so that settling
        again after a failure goes to the same shard (entry ids repeat across streams)."""
        for delivery in deliveries:
            self._owner.pop(id(delivery), None)

    async def receive_acking(
        self, acked: Sequence[Delivery], max_count: int, timeout: float
    ) -> Sequence[Delivery]:
        await self.ack(acked)
        return await self.receive(max_count, timeout)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for shard, part in self._by_shard(deliveries).values():
            await shard.ack(part)
            self._settled(part)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        await (self._owner.get(id(delivery)) or self._shards[0]).reject(delivery, reason, details)
        self._settled((delivery,))

    async def renew(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        lost: list[Delivery] = []
        for shard, part in self._by_shard(deliveries).values():
            lost += await shard.renew(part)
        return lost

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        await (self._owner.get(id(delivery)) or self._shards[0]).retry_later(delivery, delay)
        self._settled((delivery,))

    async def retries_waiting(self) -> int:
        return sum([await shard.retries_waiting() for shard in self._shards])

    # Deduplicates: each shard keeps the records of what it delivered. Copies of a
    # message (one id, one partition key) go to one shard, so its records are enough.

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        found: set[str] = set()
        for shard, part in self._by_shard(deliveries).values():
            found |= await shard.seen(part)
        return found

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        for shard, part in self._by_shard(deliveries).values():
            await shard.remember(part, window)

    def settled_on_receipt(self) -> tuple[int, int]:
        dead = skipped = 0
        for shard in self._shards:
            d, s = shard.settled_on_receipt()
            dead += d
            skipped += s
        return dead, skipped

    async def ensure_group(self) -> None:
        for shard in self._shards:
            await shard.ensure_group()

    async def close(self) -> None:
        await close_all(self._shards)


async def close_all(subscriptions: Iterable[Subscription]) -> None:
    """Close each of ``subscriptions``, all of them; the first error raised after."""
    first: Exception | None = None
    for sub in subscriptions:
        try:
            await sub.close()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first
