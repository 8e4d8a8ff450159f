"""The log of an in-memory channel and the state of its consumer groups.

A channel is an append-only list of entries; an entry's delivery id is its
position in the whole log (``entries[id - first]``), so no id is built per
message. :meth:`Channel.trim` drops the oldest entries once every group is
done with them, keeping the latest ``history``.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
from typing import Final

from toolkit.channels.base import DeadLetter
from toolkit.channels.memory.wire import WireEntry
from toolkit.envelope import Envelope

__all__ = ["TRIM_STEP", "Channel", "Group"]

#: trimming runs when the log has grown by at least this many entries since the last time
TRIM_STEP: Final = 1024
_SEQUENCE: Final = itertools.count()


class Group:
    """A consumer group: its read offset, pending table, redeliveries and delayed retries."""

    __slots__ = ("ahead", "counts", "cursors", "delayed", "offset", "pending", "returned", "seen")

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
        #: priority -> index in the channel's band of the next entry this group takes
        self.cursors: dict[int, int] = {}
        #: prioritized entries taken ahead of ``offset`` (skipped when it reaches them)
        self.ahead = 0

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

    __slots__ = (
        "bands",
        "dead",
        "due",
        "entries",
        "first",
        "groups",
        "scheduled",
        "trim_at",
        "wakeup",
    )

    def __init__(self) -> None:
        # An entry's delivery id is its position in the whole log: entries[id - first].
        self.entries: list[Envelope | WireEntry] = []
        #: delivery id of entries[0] (entries before it were trimmed)
        self.first = 0
        self.groups: dict[str, Group] = {}
        self.dead: dict[str, DeadLetter] = {}
        self.wakeup = asyncio.Event()
        self.trim_at = TRIM_STEP
        #: scheduled messages by message id: (due Unix ms, sequence, entry)
        self.scheduled: dict[str, tuple[int, int, Envelope | WireEntry]] = {}
        #: (due Unix ms, sequence, message id), soonest first; entries no longer in
        #: ``scheduled`` (cancelled, replaced) are dropped when they come up
        self.due: list[tuple[int, int, str]] = []
        #: priority (above 0) -> delivery ids of the entries sent with it, oldest first;
        #: groups take these before the log's unprioritized entries
        self.bands: dict[int, list[int]] = {}

    def band(self, group: Group, priority: int) -> tuple[list[int], int]:
        """The delivery ids of ``priority``'s band and where ``group`` takes from it next."""
        ids = self.bands[priority]
        cursor = group.cursors.get(priority)
        if cursor is None:  # a group new to this band starts where its offset is
            cursor = group.cursors[priority] = bisect.bisect_left(ids, group.offset)
        return ids, cursor

    def hold(self, due_ms: int, message_id: str, entry: Envelope | WireEntry) -> None:
        """Keep a scheduled message apart until ``due_ms`` (replacing one with its id)."""
        seq = next(_SEQUENCE)  # keeps equal due times in the order they were sent
        self.scheduled[message_id] = (due_ms, seq, entry)
        heapq.heappush(self.due, (due_ms, seq, message_id))

    def take_due(self, now_ms: int) -> list[Envelope | WireEntry]:
        """The scheduled messages due by ``now_ms``, soonest first, no longer held."""
        out: list[Envelope | WireEntry] = []
        due, scheduled = self.due, self.scheduled
        while due and due[0][0] <= now_ms:
            _, seq, message_id = heapq.heappop(due)
            held = scheduled.get(message_id)
            if held is not None and held[1] == seq:
                del scheduled[message_id]
                out.append(held[2])
        return out

    def next_due(self) -> int | None:
        """When the soonest scheduled message is due (Unix ms), if any is held."""
        due, scheduled = self.due, self.scheduled
        while due:
            _, seq, message_id = due[0]
            held = scheduled.get(message_id)
            if held is not None and held[1] == seq:
                return due[0][0]
            heapq.heappop(due)
        return None

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
                self._trim_bands(keep_from)
        self.trim_at = len(self.entries) + step

    def _trim_bands(self, keep_from: int) -> None:
        for priority, ids in list(self.bands.items()):
            dropped = bisect.bisect_left(ids, keep_from)
            if not dropped:
                continue
            del ids[:dropped]
            for group in self.groups.values():
                if priority in group.cursors:
                    group.cursors[priority] = max(group.cursors[priority] - dropped, 0)
            if not ids:
                del self.bands[priority]
                for group in self.groups.values():
                    group.cursors.pop(priority, None)
