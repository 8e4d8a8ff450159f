"""The log of an in-memory channel and the state of its consumer groups.

A channel is an append-only list of entries; an entry's delivery id is its
position in the whole log (``entries[id - first]``), so no id is built per
message. :meth:`Channel.trim` drops the oldest entries once every group is
done with them, keeping the latest ``history``.
"""

from __future__ import annotations

import asyncio
import heapq
from typing import Final

from toolkit.channels.base import DeadLetter
from toolkit.channels.memory.wire import WireEntry
from toolkit.envelope import Envelope

__all__ = ["TRIM_STEP", "Channel", "Group"]

#: trimming runs when the log has grown by at least this many entries since the last time
TRIM_STEP: Final = 1024


class Group:
    """A consumer group: its read offset, pending table, redeliveries and delayed retries."""

    __slots__ = ("counts", "delayed", "offset", "pending", "returned", "seen")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        #: delivery id -> (envelope, consumer); insertion-ordered, so the first is the oldest
        self.pending: dict[int, tuple[Envelope, str]] = {}
        #: delivery ids handed back for redelivery, oldest first
        self.returned: list[int] = []
        self.counts: dict[int, int] = {}
        #: (due monotonic time, delivery id): pending messages waiting for a retry
        self.delayed: list[tuple[float, int]] = []
        #: message id -> monotonic time its deduplication record expires; oldest first
        self.seen: dict[str, float] = {}

    def release_due(self, now: float) -> float | None:
        """Move due retries to ``returned``; the next due time, if any is left."""
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            _, delivery_id = heapq.heappop(delayed)
            if delivery_id in self.pending and delivery_id not in self.returned:
                self.returned.append(delivery_id)
        return delayed[0][0] if delayed else None

    def remember(self, message_ids: list[str], expires: float, now: float) -> None:
        """Record handled message ids until ``expires``; drop the oldest expired records."""
        seen = self.seen
        for message_id in message_ids:
            # Moved to the end: the dict stays (roughly) in expiry order.
            seen.pop(message_id, None)
            seen[message_id] = expires
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now:
                break
            del seen[oldest]

    def oldest_needed(self) -> int:
        """The delivery id of the oldest entry this group may still receive."""
        return min(self.offset, next(iter(self.pending))) if self.pending else self.offset


class Channel:
    """A channel: its log, its groups, its dead letters, and the event receivers wait on."""

    __slots__ = ("dead", "entries", "first", "groups", "trim_at", "wakeup")

    def __init__(self) -> None:
        # An entry's delivery id is its position in the whole log: entries[id - first].
        self.entries: list[Envelope | WireEntry] = []
        #: delivery id of entries[0] (entries before it were trimmed)
        self.first = 0
        self.groups: dict[str, Group] = {}
        self.dead: dict[str, DeadLetter] = {}
        self.wakeup = asyncio.Event()
        self.trim_at = TRIM_STEP

    @property
    def end(self) -> int:
        """The delivery id the next entry gets."""
        return self.first + len(self.entries)

    def trim(self, history: int, step: int) -> None:
        """Drop what every group is done with, keeping the latest ``history`` entries.

        A channel without groups keeps everything: nothing sent before its
        first consumer starts may be lost. The next trim is ``step`` entries away.
        """
        if self.groups:
            keep_from = min(g.oldest_needed() for g in self.groups.values())
            keep_from = min(keep_from, self.end - history)
            if keep_from > self.first:
                del self.entries[: keep_from - self.first]
                self.first = keep_from
        self.trim_at = len(self.entries) + step
