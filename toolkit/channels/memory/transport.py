"""The in-memory transport: sending, consumer groups, inspection and dead letters."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Final

from toolkit.channels.base import MAX_MESSAGE_BYTES, DeadLetter, ScheduledMessage
from toolkit.channels.memory.log import TRIM_STEP, Channel, Group
from toolkit.channels.memory.subscription import InMemorySubscription
from toolkit.channels.memory.wire import (
    WireEntry,
    entry_priority,
    parse_or_none,
    raw_fields,
    unchanged_by_wire,
    wire_fields,
)
from toolkit.channels.status import ChannelStatus, ConsumerStatus, GroupStatus
from toolkit.envelope import Envelope
from toolkit.scheduling import split_due

__all__ = ["DEFAULT_HISTORY", "InMemoryTransport"]

#: acknowledged messages kept per channel, by default
DEFAULT_HISTORY: Final = 10_000


def _stored(envelopes: Sequence[Envelope]) -> Sequence[Envelope | WireEntry]:
    """What a channel keeps of ``envelopes``: each as it is when the wire round trip
    would give it back unchanged (what the bus sends), else its wire form, read
    when received. Raises, storing nothing, where the Redis transport's send raises."""
    for envelope in envelopes:
        if not unchanged_by_wire(envelope):
            return [e if unchanged_by_wire(e) else WireEntry(wire_fields(e)) for e in envelopes]
    return envelopes


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class InMemoryTransport:
    """Channels held in this process. Not shared between processes; nothing persists.

    ``history``: acknowledged messages kept per channel (see :mod:`toolkit.channels.memory`).
    ``max_message_bytes``: larger bodies are dead-lettered on receipt, as on Redis.
    Scheduled messages (``Schedules``) wait apart, on this process's clock.
    """

    def __init__(
        self, *, history: int = DEFAULT_HISTORY, max_message_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        if history < 0:
            raise ValueError("history must not be negative")
        self.history = history
        self.max_message_bytes = max_message_bytes
        self._trim_step = max(history, TRIM_STEP)
        self._channels: dict[str, Channel] = {}
        self._dead_ids = itertools.count(1)
        #: the event loop whose consumers read these channels, and its thread: a
        #: synchronous send from another thread (a handler in a worker thread) is
        #: handed to that loop, since channels and their wake-up events are not thread-safe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def _channel(self, name: str) -> Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = Channel()
        return channel

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        # _append and _stored's common case inlined: this is the publisher's hot path.
        ch = self._channels.get(channel) or self._channel(channel)
        entries: Sequence[Envelope | WireEntry] = envelopes
        plain = True
        for envelope in envelopes:
            if not unchanged_by_wire(envelope):
                entries = self._hold_scheduled(ch, envelopes)
                plain = False
                break
            if envelope.headers.priority:
                plain = False
        if ch.scheduled:
            # A publisher touching the channel moves what fell due, before its own messages.
            due = ch.take_due(_now_ms())
            if due:
                entries = [*due, *entries]
                plain = False
        if not plain:
            self._append(ch, entries)
            return
        ch.entries.extend(entries)
        if len(ch.entries) >= ch.trim_at:
            ch.trim(self.history, self._trim_step)
        if ch.groups:
            ch.wakeup.set()

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Synchronous send, for the synchronous publisher and tests.

        From a thread other than the consumers' loop, the append runs on that
        loop, in order with the thread's other sends.
        """
        now, scheduled = split_due(envelopes, _now_ms())
        entries = _stored(now)  # raises here, in the caller, as on Redis
        held = _stored(scheduled)
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread and not loop.is_closed():
            loop.call_soon_threadsafe(self._append_to, channel, entries, scheduled, held)
            return
        self._append_to(channel, entries, scheduled, held)

    def _append_to(
        self,
        channel: str,
        entries: Sequence[Envelope | WireEntry],
        scheduled: Sequence[Envelope] = (),
        held: Sequence[Envelope | WireEntry] = (),
    ) -> None:
        ch = self._channels.get(channel) or self._channel(channel)
        for envelope, entry in zip(scheduled, held, strict=True):
            ch.hold(envelope.headers.deliver_at_ms, envelope.headers.message_id, entry)
        due = ch.take_due(_now_ms()) if ch.scheduled else None
        self._append(ch, [*due, *entries] if due else entries)
        if scheduled:
            ch.wakeup.set()  # receivers waiting recompute how long to wait

    def _hold_scheduled(
        self, ch: Channel, envelopes: Sequence[Envelope]
    ) -> Sequence[Envelope | WireEntry]:
        """What of ``envelopes`` joins the log now; those due later are held apart
        (in their stored form, so a bad one still fails ``send`` here, as on Redis)."""
        now, later = split_due(envelopes, _now_ms())
        held = _stored(later) if later else ()
        entries = _stored(now)
        for envelope, entry in zip(later, held, strict=True):
            ch.hold(envelope.headers.deliver_at_ms, envelope.headers.message_id, entry)
        if later:
            ch.wakeup.set()
        return entries

    def release_due(self, ch: Channel) -> int | None:
        """Move ``ch``'s scheduled messages that fell due into its log; when the
        next one is due (Unix ms), if any is left."""
        if not ch.scheduled:
            return None
        due = ch.take_due(_now_ms())
        if due:
            self._append(ch, due)
        return ch.next_due()

    #: Prioritizes: a group takes its backlog's higher priorities first (bands of the log)
    prioritizes_messages = True

    # -- Schedules --------------------------------------------------------------------

    schedules_messages = True

    async def scheduled(self, channel: str, *, count: int | None = None) -> list[ScheduledMessage]:
        ch = self._channels.get(channel)
        if ch is None:
            return []
        self.release_due(ch)
        waiting = sorted(ch.scheduled.items(), key=lambda item: item[1][:2])
        if count is not None:
            waiting = waiting[:count]
        found = []
        for message_id, (due, _, entry) in waiting:
            envelope = parse_or_none(entry.fields) if isinstance(entry, WireEntry) else entry
            found.append(ScheduledMessage(channel, message_id, due, envelope))
        return found

    async def cancel_scheduled(self, channel: str, message_ids: Sequence[str]) -> int:
        ch = self._channels.get(channel)
        if ch is None:
            return 0
        self.release_due(ch)  # what fell due is delivered, not cancelled
        return sum(1 for m in set(message_ids) if ch.scheduled.pop(m, None) is not None)

    def _append(self, ch: Channel, entries: Sequence[Envelope | WireEntry]) -> None:
        end = ch.end
        ch.entries.extend(entries)
        for delivery_id, entry in enumerate(entries, end):
            priority = entry_priority(entry)
            if priority:
                ch.bands.setdefault(priority, []).append(delivery_id)
        if len(ch.entries) >= ch.trim_at:
            ch.trim(self.history, self._trim_step)
        if ch.groups:
            ch.wakeup.set()

    async def subscribe(self, channel: str, group: str, consumer: str) -> InMemorySubscription:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        ch = self._channel(channel)
        if group not in ch.groups:
            ch.groups[group] = Group(ch.first)
        return InMemorySubscription(self, channel, ch, group, consumer)

    async def close(self) -> None:
        return None

    # -- inspection, for tests and the testing helpers -------------------------------

    def channel_names(self) -> list[str]:
        return sorted(self._channels)

    def messages(self, channel: str) -> list[Envelope]:
        """The envelopes kept of ``channel``, oldest first: every one not yet
        acknowledged by every group, and at least the latest ``history`` ones.

        Entries that are not valid envelopes are left out.
        """
        ch = self._channels.get(channel)
        if ch is None:
            return []
        found: list[Envelope] = []
        for entry in ch.entries:
            if entry.__class__ is WireEntry:
                assert isinstance(entry, WireEntry)
                parsed = parse_or_none(entry.fields)
                if parsed is not None:
                    found.append(parsed)
            else:
                assert isinstance(entry, Envelope)
                found.append(entry)
        return found

    def stored(self, channel: str) -> int:
        """How many entries of ``channel`` are held in memory (dead letters aside)."""
        ch = self._channels.get(channel)
        return len(ch.entries) if ch else 0

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
        return ch.end - g.offset - g.ahead + len(g.returned)

    def add_raw(self, channel: str, fields: Mapping[str, str | bytes]) -> None:
        """Append an entry given as raw wire fields, as another language would write it.

        Invalid entries are dead-lettered by the subscription that reads them.
        """
        self._append(self._channel(channel), [WireEntry(raw_fields(fields))])

    async def status(self, channel: str) -> ChannelStatus:
        """ReportsStatus: what the channel holds; consumers are those holding messages
        (memory keeps no record of when a consumer last read)."""
        ch = self._channels.get(channel)
        if ch is None:
            return ChannelStatus(channel=channel, length=0, dead_letters=0)
        now_ms = time.time() * 1000
        groups = []
        for name, group in sorted(ch.groups.items()):
            holding: dict[str, int] = {}
            for _, consumer in group.pending.values():
                holding[consumer] = holding.get(consumer, 0) + 1
            oldest = next(iter(group.pending.values()), None)
            groups.append(
                GroupStatus(
                    name=name,
                    lag=ch.end - group.offset - group.ahead,
                    pending=len(group.pending),
                    retrying=len(group.delayed),
                    oldest_pending_age=None
                    if oldest is None
                    else max(now_ms - oldest[0].headers.timestamp_ms, 0.0) / 1000,
                    consumers=[
                        ConsumerStatus(name=c, pending=n) for c, n in sorted(holding.items())
                    ],
                )
            )
        return ChannelStatus(
            channel=channel, length=len(ch.entries), dead_letters=len(ch.dead), groups=groups
        )

    # -- dead letters -----------------------------------------------------------------

    def _dead_letter(
        self,
        ch: Channel,
        reason: str,
        sub: InMemorySubscription,
        delivery_id: int,
        envelope: Envelope | None,
        fields: dict[str, bytes],
        details: Mapping[str, str],
        attempts: int,
    ) -> None:
        """Store a dead letter as the Redis transport does: the wire fields, and details
        naming the channel, consumer, entry, time and attempts (``details`` win)."""
        now_ms = int(time.time() * 1000)
        dead_id = f"{now_ms}-{next(self._dead_ids)}"
        info = {
            "channel": sub.channel,
            "consumer": sub.consumer,
            "entry_id": str(delivery_id),
            "at": str(now_ms),
            "attempts": str(attempts),
        }
        info.update(details)
        ch.dead[dead_id] = DeadLetter(dead_id, reason, sub.group, envelope, dict(fields), info)

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

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        ch = self._channels.get(channel)
        return ch.dead.get(dead_letter_id) if ch else None

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back, each to the group that dead-lettered it only (as on Redis)."""
        ch = self._channels.get(channel)
        if ch is None:
            return 0
        replayed = 0
        for dead_id in dead_letter_ids:
            dead = ch.dead.get(dead_id)
            if dead is None or dead.envelope is None:
                continue
            del ch.dead[dead_id]
            fields = raw_fields(dead.fields)
            self._append(ch, [WireEntry(fields, dead.group or None)])
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
