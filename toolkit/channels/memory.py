"""In-memory channels: the same semantics as Redis Streams, inside one process.

Each channel is an append-only log. Each consumer group keeps a read offset
and a pending table; unacknowledged messages of a closed subscription go back
to the group (as a crashed consumer's would after the visibility timeout), so
tests can exercise redelivery without a server. ``retry_later`` keeps a
message pending and hands it back once its delay has passed, like the Redis
channel's delay set.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Mapping, Sequence

from toolkit.channels.base import DeadLetter, Delivery
from toolkit.envelope import Envelope

__all__ = ["InMemorySubscription", "InMemoryTransport"]


class _Group:
    __slots__ = ("counts", "delayed", "offset", "pending", "returned")

    def __init__(self) -> None:
        self.offset = 0
        #: delivery id -> (envelope, consumer); insertion-ordered
        self.pending: dict[int, tuple[Envelope, str]] = {}
        #: delivery ids handed back for redelivery, oldest first
        self.returned: list[int] = []
        self.counts: dict[int, int] = {}
        #: (due monotonic time, delivery id): pending messages waiting for a retry
        self.delayed: list[tuple[float, int]] = []

    def release_due(self, now: float) -> float | None:
        """Move due retries to ``returned``; the next due time, if any is left."""
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            _, delivery_id = heapq.heappop(delayed)
            if delivery_id in self.pending and delivery_id not in self.returned:
                self.returned.append(delivery_id)
        return delayed[0][0] if delayed else None


class _Channel:
    __slots__ = ("dead", "entries", "groups", "wakeup")

    def __init__(self) -> None:
        # An entry's delivery id is its index: no id to build per message.
        self.entries: list[Envelope | _RawEntry] = []
        self.groups: dict[str, _Group] = {}
        self.dead: dict[str, DeadLetter] = {}
        self.wakeup = asyncio.Event()


class InMemoryTransport:
    """Channels held in this process. Not shared between processes; nothing persists."""

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}
        self._dead_ids = itertools.count(1)

    def _channel(self, name: str) -> _Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel()
        return channel

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        ch = self._channels.get(channel) or self._channel(channel)
        ch.entries.extend(envelopes)
        if ch.groups:
            ch.wakeup.set()

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Synchronous send, for the synchronous publisher and tests."""
        ch = self._channels.get(channel) or self._channel(channel)
        ch.entries.extend(envelopes)
        if ch.groups:
            ch.wakeup.set()

    async def subscribe(self, channel: str, group: str, consumer: str) -> InMemorySubscription:
        ch = self._channel(channel)
        if group not in ch.groups:
            ch.groups[group] = _Group()
        return InMemorySubscription(self, channel, ch, group, consumer)

    async def close(self) -> None:
        return None

    # -- inspection, for tests and the testing helpers -------------------------------

    def channel_names(self) -> list[str]:
        return sorted(self._channels)

    def messages(self, channel: str) -> list[Envelope]:
        """Every envelope ever sent to ``channel``, in order (acknowledged or not)."""
        ch = self._channels.get(channel)
        return [env for env in ch.entries if isinstance(env, Envelope)] if ch else []

    def pending(self, channel: str, group: str) -> list[Envelope]:
        ch = self._channels.get(channel)
        if ch is None or group not in ch.groups:
            return []
        return [env for env, _ in ch.groups[group].pending.values()]

    def backlog(self, channel: str, group: str) -> int:
        """Messages the group has not yet received plus those handed back for redelivery."""
        ch = self._channels.get(channel)
        if ch is None:
            return 0
        g = ch.groups.get(group)
        if g is None:
            return len(ch.entries)
        return len(ch.entries) - g.offset + len(g.returned)

    def add_raw(self, channel: str, fields: dict[str, str | bytes]) -> None:
        """Append an entry given as raw wire fields, as another language would write it.

        Invalid entries are dead-lettered by the subscription that reads them.
        """
        ch = self._channel(channel)
        ch.entries.append(_RawEntry(fields))
        if ch.groups:
            ch.wakeup.set()

    # -- dead letters -----------------------------------------------------------------

    def _dead_letter(
        self,
        ch: _Channel,
        reason: str,
        group: str,
        envelope: Envelope | None,
        fields: dict[str, str | bytes],
        details: Mapping[str, str] | None = None,
    ) -> None:
        dead_id = f"{int(time.time() * 1000)}-{next(self._dead_ids)}"
        ch.dead[dead_id] = DeadLetter(dead_id, reason, group, envelope, fields, details)

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        ch = self._channels.get(channel)
        if ch is None:
            return []
        found = [
            d
            for d in ch.dead.values()
            if routing_key is None
            or (d.envelope is not None and d.envelope.headers.routing_key == routing_key)
        ]
        return found[:count] if count is not None else found

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        ch = self._channels.get(channel)
        if ch is None:
            return 0
        replayed = 0
        for dead_id in dead_letter_ids:
            dead = ch.dead.get(dead_id)
            if dead is None or dead.envelope is None:
                continue
            del ch.dead[dead_id]
            self.send_sync(channel, [dead.envelope])
            replayed += 1
        return replayed

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        ch = self._channels.get(channel)
        if ch is None:
            return 0
        if dead_letter_ids is None:
            removed = len(ch.dead)
            ch.dead.clear()
            return removed
        return sum(1 for d in dead_letter_ids if ch.dead.pop(d, None) is not None)


class _RawEntry:
    """An entry added as wire fields; parsed when read, like a Redis entry."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, str | bytes]) -> None:
        self.fields = fields


class InMemorySubscription:
    def __init__(
        self, transport: InMemoryTransport, name: str, channel: _Channel, group: str, consumer: str
    ) -> None:
        self._transport = transport
        self._ch = channel
        self._group = channel.groups[group]
        self.channel = name
        self.group = group
        self.consumer = consumer
        self._closed = False
        self._dead_on_receipt = 0

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        next_due = self._group.release_due(time.monotonic())
        deliveries = self._take(max_count)
        if deliveries or timeout <= 0:
            return deliveries
        deadline = time.monotonic() + timeout
        while not deliveries:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0 or self._closed:
                break
            if next_due is not None:
                remaining = min(remaining, max(next_due - now, 0.0))
            self._ch.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ch.wakeup.wait(), remaining)
            next_due = self._group.release_due(time.monotonic())
            deliveries = self._take(max_count)
        return deliveries

    def _take(self, max_count: int) -> list[Delivery]:
        ch, group, name, consumer = self._ch, self._group, self.channel, self.consumer
        out: list[Delivery] = []
        while group.returned and len(out) < max_count:
            delivery_id = group.returned.pop(0)
            env, _ = group.pending[delivery_id]
            group.pending[delivery_id] = (env, consumer)
            count = group.counts[delivery_id] = group.counts.get(delivery_id, 1) + 1
            out.append(Delivery(env, name, delivery_id, count))
        entries = ch.entries
        start = group.offset
        stop = min(len(entries), start + max_count - len(out))
        pending = group.pending
        for delivery_id in range(start, stop):
            entry = entries[delivery_id]
            if entry.__class__ is _RawEntry:
                assert isinstance(entry, _RawEntry)
                try:
                    env = Envelope.from_fields(entry.fields)
                except Exception as exc:  # any parse failure is this entry's fault alone
                    self._transport._dead_letter(
                        ch, f"invalid envelope: {exc}", self.group, None, entry.fields
                    )
                    self._dead_on_receipt += 1
                    continue
            else:
                env = entry  # type: ignore[assignment]
            pending[delivery_id] = (env, consumer)
            out.append(Delivery(env, name, delivery_id, 1))
        group.offset = max(stop, start)
        return out

    def settled_on_receipt(self) -> tuple[int, int]:
        """Invalid entries ``receive`` dead-lettered since the last call (and none skipped)."""
        dead, self._dead_on_receipt = self._dead_on_receipt, 0
        return dead, 0

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        pending, counts = self._group.pending, self._group.counts
        for d in deliveries:
            pending.pop(d.delivery_id, None)
            if counts:
                counts.pop(d.delivery_id, None)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        self._transport._dead_letter(
            self._ch, reason, self.group, delivery.envelope, delivery.envelope.to_fields(), details
        )
        await self.ack([delivery])

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        """Keep the message pending; ``receive`` hands it out again after ``delay`` seconds."""
        if delivery.delivery_id not in self._group.pending:
            return
        heapq.heappush(self._group.delayed, (time.monotonic() + delay, delivery.delivery_id))
        self._ch.wakeup.set()

    async def retries_waiting(self) -> int:
        group = self._group
        return sum(1 for _, delivery_id in group.delayed if delivery_id in group.pending)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Hand messages back to the group for redelivery without acknowledging them."""
        for d in deliveries:
            if d.delivery_id in self._group.pending and d.delivery_id not in self._group.returned:
                self._group.returned.append(d.delivery_id)
        self._ch.wakeup.set()

    async def close(self) -> None:
        """Close; this consumer's unacknowledged messages go back to the group."""
        if self._closed:
            return
        self._closed = True
        mine = [
            Delivery(env, self.channel, did)
            for did, (env, owner) in self._group.pending.items()
            if owner == self.consumer
        ]
        await self.release(mine)
