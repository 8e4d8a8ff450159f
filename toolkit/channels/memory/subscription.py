"""One consumer in one group of an in-memory channel: receiving and settling.

Entries kept in their wire form are read here, as the Redis subscription
reads stream entries: a replay for another group is skipped, a body over the
limit or an invalid envelope is dead-lettered with the Redis transport's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from toolkit.channels.base import Delivery, too_large
from toolkit.channels.memory.log import Channel
from toolkit.channels.memory.wire import WireEntry, entry_priority, parse_or_none, wire_fields
from toolkit.envelope import Envelope, WireError
from toolkit.wire import F_BODY

if TYPE_CHECKING:
    from toolkit.channels.memory.transport import InMemoryTransport

__all__ = ["InMemorySubscription"]


class InMemorySubscription:
    """One consumer in one group. Implements Subscription, DelayedRetry and Deduplicates."""

    def __init__(
        self, transport: InMemoryTransport, name: str, channel: Channel, group: str, consumer: str
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
        scheduled_due = self._transport.release_due(self._ch) if self._ch.scheduled else None
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
            if scheduled_due is not None:
                remaining = min(remaining, max(scheduled_due / 1000 - time.time(), 0.0))
            self._ch.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ch.wakeup.wait(), remaining)
            next_due = self._group.release_due(time.monotonic())
            scheduled_due = self._transport.release_due(self._ch) if self._ch.scheduled else None
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
        if ch.bands and len(out) < max_count:
            self._take_bands(max_count, out)
        start = group.offset
        stop = min(ch.end, start + max_count - len(out))
        pending = group.pending
        max_bytes = self._transport.max_message_bytes
        taken = ch.entries[start - ch.first : stop - ch.first]
        for delivery_id, entry in zip(range(start, stop), taken, strict=True):
            if ch.bands and group.ahead and entry_priority(entry):
                # Taken ahead from its band: once the bands are empty every one
                # before ``ch.end`` was (and this loop runs only when they are).
                group.ahead -= 1
                continue
            if entry.__class__ is WireEntry:
                received = self._read(entry, delivery_id)
                if received is None:
                    continue
                env = received
            else:
                env = entry  # type: ignore[assignment]
                if len(env.body) > max_bytes:
                    reason = too_large(len(env.body), max_bytes)
                    self._unreadable(delivery_id, wire_fields(env), reason)
                    continue
            pending[delivery_id] = (env, consumer)
            out.append(Delivery(env, name, delivery_id, 1))
        group.offset = max(stop, start)
        return out

    def _take_bands(self, max_count: int, out: list[Delivery]) -> None:
        """Prioritized entries not yet taken, highest priority first, each band in order."""
        ch, group = self._ch, self._group
        for priority in sorted(ch.bands, reverse=True):
            ids, cursor = ch.band(group, priority)
            while cursor < len(ids) and len(out) < max_count:
                delivery_id = ids[cursor]
                cursor += 1
                group.ahead += 1
                env = self._receivable(ch.entries[delivery_id - ch.first], delivery_id)
                if env is None:
                    continue
                group.pending[delivery_id] = (env, self.consumer)
                out.append(Delivery(env, self.channel, delivery_id, 1))
            group.cursors[priority] = cursor
            if len(out) >= max_count:
                return

    def _receivable(self, entry: Envelope | WireEntry, delivery_id: int) -> Envelope | None:
        """``entry`` as this group receives it; None when skipped or dead-lettered
        (the checks ``_take``'s loop makes inline)."""
        if isinstance(entry, WireEntry):
            return self._read(entry, delivery_id)
        limit = self._transport.max_message_bytes
        if len(entry.body) > limit:
            self._unreadable(delivery_id, wire_fields(entry), too_large(len(entry.body), limit))
            return None
        return entry

    def _read(self, entry: WireEntry, delivery_id: int) -> Envelope | None:
        """The envelope of a wire entry for this group; None when it is skipped or dead-lettered."""
        if entry.group is not None and entry.group != self.group:
            return None  # a replay for another group
        body = entry.fields.get(F_BODY)
        limit = self._transport.max_message_bytes
        if body is not None and len(body) > limit:
            self._unreadable(delivery_id, entry.fields, too_large(len(body), limit))
            return None
        try:
            return Envelope.from_fields(entry.fields)
        except Exception as exc:  # any parse failure is this entry's fault alone
            reason = str(exc) if isinstance(exc, WireError) else f"{type(exc).__name__}: {exc}"
            self._unreadable(delivery_id, entry.fields, f"invalid envelope: {reason}")
            return None

    def _unreadable(self, delivery_id: int, fields: dict[str, bytes], reason: str) -> None:
        """Dead-letter an entry this group cannot receive, as the Redis subscription does."""
        self._transport._dead_letter(
            self._ch, reason, self, delivery_id, parse_or_none(fields), fields, {}, 1
        )
        self._dead_on_receipt += 1

    def settled_on_receipt(self) -> tuple[int, int]:
        """Entries ``receive`` dead-lettered since the last call (and none skipped)."""
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
        details = dict(details or {})
        attempts = int(details.pop("attempts", delivery.delivery_count))
        self._transport._dead_letter(
            self._ch,
            reason,
            self,
            delivery.delivery_id,
            delivery.envelope,
            wire_fields(delivery.envelope),
            details,
            attempts,
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

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        now = time.monotonic()
        seen = self._group.seen
        found = set()
        for delivery in deliveries:
            message_id = delivery.message_id
            expires = seen.get(message_id)
            if expires is not None and expires > now:
                found.add(message_id)
        return found

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        now = time.monotonic()
        self._group.remember([d.message_id for d in deliveries], now + window, now)

    async def close(self) -> None:
        """Close; this consumer's unacknowledged messages go back to the group
        (those waiting for a retry once it is due, as on Redis)."""
        if self._closed:
            return
        self._closed = True
        waiting = {did for _, did in self._group.delayed}
        mine = [
            Delivery(env, self.channel, did)
            for did, (env, owner) in self._group.pending.items()
            if owner == self.consumer and did not in waiting
        ]
        await self.release(mine)
