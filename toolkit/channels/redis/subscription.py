"""One consumer in one consumer group on one Redis stream: receiving and settling.

* ``receive``: ``XREADGROUP COUNT n BLOCK t``; interleaved with it, at most
  every ``reclaim_interval``, one script moves due retries back to this
  consumer and reclaims entries idle in the group's pending list for longer
  than the visibility timeout (``XAUTOCLAIM``). The block time is cut to the
  next of those checks, so there is no busy loop and no starved reclaim.
  Less often, consumers of the group that own nothing and have been idle past
  ``idle_consumer_timeout`` (killed ones) are removed.
* ``renew``: while handlers run, the consumer renews its lease on the batch
  in hand: one script resets the idle time of the entries it still owns
  (``XCLAIM`` by the owner, ``JUSTID``: no delivery counted), so they are not
  reclaimed by another consumer however long the batch takes.
* ``ack``: one ``XACK`` per batch; ``receive_acking`` writes it ahead of the
  next ``XREADGROUP``, so a batch costs one round trip.
* ``retry_later``: the entry stays pending (a crash cannot lose it); its id
  goes into the group's delay set scored by its due time (server clock). It is
  claimed back, delivery count + 1, once due.
* ``reject``: ``MULTI`` / ``XADD`` to the dead-letter stream / ``XACK`` /
  ``EXEC``: dead-lettered and acknowledged together.

Entries that cannot be read as envelopes are dead-lettered on receipt; a
group deleted under the consumer is recreated (NOGROUP).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import NoScriptError

from toolkit.channels.base import Delivery
from toolkit.channels.redis.dedup import RedisDeduplication
from toolkit.channels.redis.entries import (
    B_MESSAGE_ID,
    Unreadable,
    dead_letter_args,
    pairs,
    read_entries,
)
from toolkit.channels.redis.errors import is_nogroup, is_transient, unavailable
from toolkit.channels.redis.raw import execute
from toolkit.channels.redis.resp import bulk, fields_args
from toolkit.channels.redis.schedule import ScheduledRelease
from toolkit.channels.redis.scripts import READ_SEEN

if TYPE_CHECKING:
    from toolkit.channels.redis.transport import RedisTransport

__all__ = ["RedisSubscription"]

log = logging.getLogger("toolkit.redis")

# XREADGROUP BLOCK never exceeds this (it must stay under the socket timeout).
_MAX_BLOCK: Final = 5.0
_NEVER: Final = float("inf")


def _int_bulk(n: int) -> bytes:
    return bulk(b"%d" % n)


class RedisSubscription(RedisDeduplication):
    """One consumer in one group on one channel. Implements Subscription, DelayedRetry,
    RenewsLeases, AcksOnReceive and Deduplicates (:mod:`toolkit.channels.redis.dedup`)."""

    def __init__(
        self,
        transport: RedisTransport,
        channel: str,
        group: str,
        consumer: str,
        shard: str | None = None,
    ) -> None:
        """``shard``: the stream's own channel name when it is one shard of ``channel``
        (see :mod:`~toolkit.channels.redis.shards`) or a priority band of it
        (:mod:`~toolkit.channels.redis.priorities`); deliveries still name ``channel``."""
        self._transport = transport
        self._redis = transport.redis
        #: the name the stream is keyed by (the shard's or band's, or the channel's)
        self.keyed = self._keyed = keyed = shard or channel
        #: the band's priority; 0 for a channel's (or shard's) own stream
        self.priority = int(keyed.partition("!")[2] or 0)
        #: ``watch``: a SCARD of the channel's bands, written ahead of each read
        self._watch = b""
        #: the bands the last read found listed, and those read (PrioritizedSubscription)
        self.bands_listed = self.bands_known = 0
        #: reads and acknowledgements go on one connection, kept between them
        self._conn = transport.held_connection(transport.keys(keyed).stream)
        #: a packed XACK for ``receive`` to send ahead of its read (``receive_acking``)
        self._ack_first = b""
        #: deduplication records written, replies unread (:mod:`~toolkit.channels.redis.dedup`)
        self._records: list[bytes] = []
        self.channel = channel
        self.group = group
        self.consumer = consumer
        self.keys = keys = transport.keys(keyed)
        self.options = options = transport.options(channel)
        self._stream = keys.stream
        self._delay = keys.delay(group)
        self.visibility_timeout = options.visibility_timeout
        self._min_idle_ms = int(options.visibility_timeout * 1000)
        self._reclaim_every = options.reclaim_every
        self._max_bytes = options.max_message_bytes
        #: monotonic time of the next reclaim / due-retry check
        self._next_tick = 0.0
        #: monotonic time the group's next retry is due (as of the last tick or
        #: a retry scheduled here since): one number, however many are waiting
        self._next_due = _NEVER
        self._cursor = "0-0"
        #: id of the last new entry read: a group deleted under us is recreated
        #: here, so entries already handled are not handled again
        self._last_id = "0"
        self._group_arg = group.encode()
        self._ack_head = bulk(self._stream.encode()) + bulk(self._group_arg)
        # XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS key >, packed by hand but n and ms.
        self._read_head = b"".join(
            bulk(a.encode()) for a in ("XREADGROUP", "GROUP", group, consumer, "COUNT")
        )
        self._read_tail = b"".join(bulk(a.encode()) for a in ("STREAMS", self._stream, ">"))
        # EVALSHA READ_SEEN 2 stream seen group consumer n, packed by hand but n.
        self._check_head = b"*8\r\n$7\r\nEVALSHA\r\n" + b"".join(
            bulk(a.encode())
            for a in (transport.read_seen_sha, "2", self._stream, keys.seen(group), group, consumer)
        )
        #: the consumer deduplicates (it asked ``seen``): reads check what they read
        self._checks = False
        #: the last read filled its batch: a backlog, where the next read checks too
        self._full = False
        #: the scores in the seen set of what the last read checked, by entry id
        self._checked: dict[bytes, Any] | None = None
        self._next_trim = time.monotonic() + options.trim_interval
        self._idle_check_every = options.idle_check_every
        #: monotonic time of the next look for idle consumers (the first at once)
        self._next_idle_check = 0.0
        self._closed = False
        #: entries read but not handed out, by id: dead-letter (reason) or acknowledge (None)
        self._unreadable: Unreadable = {}
        #: moves scheduled messages into the stream when due (and says when to look again)
        self._scheduled = ScheduledRelease(transport, keyed)
        self._dead_on_receipt = 0
        self._skipped_on_receipt = 0

    async def ensure_group(self) -> None:
        await self._transport.ensure_group(self._keyed, self.group, self._last_id)

    def watch(self) -> None:
        """Count the channel's priority bands with every read (``bands_listed``), in its write."""
        self._watch = b"*2\r\n$5\r\nSCARD\r\n" + bulk(self.keys.bands.encode())

    # -- receiving ---------------------------------------------------------------------

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        deadline = time.monotonic() + timeout
        self._checked = None
        try:
            if self._unreadable:
                await self._settle_unreadable()
            while True:
                now = time.monotonic()
                if now >= self._scheduled.next_check:
                    await self._scheduled.release()
                if now >= self._next_tick or self._next_due <= now:
                    found = await self._run_tick(max_count)
                    if found:
                        return found
                    now = time.monotonic()
                remaining = deadline - now
                # Deduplicating with a backlog (the last read was full): read and check at once.
                checking = self._checks and self._full
                if checking:
                    payload = self._check_head + _int_bulk(max_count)
                elif remaining > 0:
                    # Wake for the next reclaim check or due retry, not later.
                    wake = min(self._next_tick, self._next_due, self._scheduled.next_check)
                    block = max(int(min(remaining, wake - now, _MAX_BLOCK) * 1000), 1)
                    payload = b"*11\r\n%s%s$5\r\nBLOCK\r\n%s%s" % (
                        self._read_head,
                        _int_bulk(max_count),
                        _int_bulk(block),
                        self._read_tail,
                    )
                else:
                    payload = b"*9\r\n%s%s%s" % (
                        self._read_head,
                        _int_bulk(max_count),
                        self._read_tail,
                    )
                # Packed by hand and sent past redis-py's command machinery, like XACK.
                ack, self._ack_first = self._ack_first, b""
                try:
                    reply = await self._read(ack, payload)
                except NoScriptError:
                    if not checking:
                        raise
                    await self._transport.load_script(READ_SEEN, [self._stream])
                    self._full = False  # a plain read this time
                    continue
                if reply:
                    if checking:
                        entries, scores = reply
                        self._checked = {e[0]: s for e, s in zip(entries, scores, strict=True)}
                    else:
                        entries = (
                            reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))
                        )
                    self._full = len(entries) >= max_count
                    found = await self._deliveries(entries, None)
                    if found:
                        return found
                else:
                    self._full = False
                if time.monotonic() >= deadline:
                    return []
        except Exception as exc:
            await self._handle_error("receiving", exc)
            return []

    async def _read(self, ack: bytes, payload: bytes) -> Any:
        """The read ``payload``'s reply, with ``ack`` (an XACK, or b"") and the count of
        bands (``watch``) written ahead of it; an error reply raised."""
        if self._watch:
            # The count of bands ahead of the read (not after: a blocked read would
            # hold it back).
            replies = await self._exchange(ack + self._watch + payload, 3 if ack else 2)
            listed, reply = replies[-2], replies[-1]
            if ack and isinstance(replies[0], Exception):
                raise replies[0]
            if not isinstance(listed, Exception):
                self.bands_listed = int(listed)
            if isinstance(reply, Exception):
                raise reply
        elif ack:
            # The XACK goes first in the same write: made before the read blocks.
            acked, reply = await self._exchange(ack + payload, 2)
            if isinstance(acked, Exception):
                raise acked
            if isinstance(reply, Exception):
                raise reply
        else:
            return await self._call(payload)
        if ack:
            await self._acknowledged()
        return reply

    async def _run_tick(self, max_count: int) -> list[Delivery]:
        if self._idle_check_every is not None and time.monotonic() >= self._next_idle_check:
            await self._forget_idle_consumers(self._idle_check_every)
        result = await self._transport._tick(
            keys=[self._stream, self._delay],
            args=[self.group, self.consumer, max_count, self._min_idle_ms, self._cursor],
        )
        cursor, claimed, wait_ms = result
        self._cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        now = time.monotonic()
        self._next_tick = now + self._reclaim_every
        # The delay set's first due time, whoever scheduled it (a consumer that
        # has gone away, too): wake for it on time.
        wait = -1 if wait_ms is None else int(wait_ms)
        self._next_due = _NEVER if wait < 0 else now + wait / 1000
        if not claimed:
            return []
        return await self._deliveries([(c[0], c[1]) for c in claimed], [int(c[2]) for c in claimed])

    async def _forget_idle_consumers(self, every: float) -> None:
        self._next_idle_check = time.monotonic() + every
        idle = self.options.idle_consumer_timeout
        assert idle is not None
        gone = await self._transport.forget_idle_consumers(
            self._keyed, self.group, idle=idle, keep=self.consumer
        )
        if gone:
            log.info(
                "removed %d consumer(s) idle for %gs or more with nothing pending from group "
                "%s on %s: %s",
                len(gone),
                idle,
                self.group,
                self.channel,
                ", ".join(gone),
            )

    async def _deliveries(
        self, entries: Iterable[Sequence[Any]], counts: list[int] | None
    ) -> list[Delivery]:
        unreadable = self._unreadable
        out, last = read_entries(
            entries, counts, self.channel, self._max_bytes, self._group_arg, unreadable
        )
        if counts is None and last is not None:
            self._last_id = last.decode()
        if unreadable:
            try:
                await self._settle_unreadable()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # Hand out what was read; the dead letters stay owed (pending in the group)
                # and are made before the next read.
                log.warning(
                    "could not dead-letter %d unreadable entries on %s yet: %s",
                    len(unreadable),
                    self.channel,
                    exc,
                )
        return out

    async def _settle_unreadable(self) -> None:
        """Dead-letter (or, reason None, just acknowledge) the entries ``receive`` could
        not hand out, in one transaction; forgotten once Redis confirms."""
        unreadable = self._unreadable
        pipe = self._redis.pipeline(transaction=True)
        ids: list[bytes] = []
        dead = 0
        for entry_id, (flat, reason) in unreadable.items():
            ids.append(entry_id)
            if reason is None:
                continue
            dead += 1
            message_id = pairs(flat).get(B_MESSAGE_ID, b"?").decode("utf-8", "replace")
            log.warning(
                "dead-lettered entry %s on %s (message %s): %s",
                entry_id.decode(),
                self.channel,
                message_id,
                reason,
            )
            pipe.execute_command(
                "XADD",
                self.keys.dead,
                "*",
                *dead_letter_args(self._dlq_fields(entry_id, reason, {}, 1), flat),
            )
        pipe.execute_command("XACK", self._stream, self.group, *ids)
        await pipe.execute()
        self._unreadable = {}
        self._dead_on_receipt += dead
        self._skipped_on_receipt += len(ids) - dead

    def settled_on_receipt(self) -> tuple[int, int]:
        """Entries ``receive`` dead-lettered and skipped by itself since the last call."""
        counts = self._dead_on_receipt, self._skipped_on_receipt
        self._dead_on_receipt = self._skipped_on_receipt = 0
        return counts

    def _dlq_fields(
        self, entry_id: bytes | str, reason: str, details: Mapping[str, str], attempts: int
    ) -> dict[str, str]:
        fields = {
            "reason": reason,
            "group": self.group,
            "channel": self.channel,
            "consumer": self.consumer,
            "entry_id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            "at": str(int(time.time() * 1000)),
            "attempts": str(attempts),
        }
        fields.update(details)
        return fields

    async def _handle_error(self, what: str, exc: BaseException) -> None:
        if is_nogroup(exc):
            log.warning(
                "group %s on %s is gone (stream or group deleted?); recreating it from entry %s",
                self.group,
                self.channel,
                self._last_id,
            )
            self._next_due = _NEVER
            self._cursor = "0-0"
            await self.ensure_group()
            return
        if is_transient(exc):
            raise unavailable(f"{what} on {self.channel!r}", exc) from exc
        raise exc

    async def receive_acking(
        self, acked: Sequence[Delivery], max_count: int, timeout: float
    ) -> Sequence[Delivery]:
        """``ack(acked)`` then ``receive``: one round trip when the read comes first
        (no due retry or reclaim check, no unreadable entry left to dead-letter)."""
        now = time.monotonic()
        if not acked or self._unreadable or now >= self._next_tick or self._next_due <= now:
            await self.ack(acked)
            return await self.receive(max_count, timeout)
        self._ack_first = self._ack_payload(acked)
        try:
            return await self.receive(max_count, timeout)
        finally:
            self._ack_first = b""

    # -- settling ----------------------------------------------------------------------

    def _ack_payload(self, deliveries: Sequence[Delivery]) -> bytes:
        ids = [d.delivery_id.encode() for d in deliveries]
        # Packed by hand: redis-py's per-argument packing is most of an XACK's cost.
        return b"".join(
            [
                b"*%d\r\n$4\r\nXACK\r\n" % (3 + len(ids)),
                self._ack_head,
                *[b"$%d\r\n%s\r\n" % (len(i), i) for i in ids],
            ]
        )

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            await self._call(self._ack_payload(deliveries))
            await self._acknowledged()
        except Exception as exc:
            await self._handle_error("acknowledging", exc)

    async def _acknowledged(self) -> None:
        """After an acknowledgement: trim, when asked to and due."""
        if self.options.trim_acknowledged and time.monotonic() >= self._next_trim:
            self._next_trim = time.monotonic() + self.options.trim_interval
            removed = await self._transport.trim(self._keyed)
            if removed:
                log.debug("trimmed %d acknowledged entries from %s", removed, self.channel)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        details = dict(details or {})
        attempts = int(details.pop("attempts", delivery.delivery_count))
        entry_id = delivery.delivery_id
        try:
            # The entry as it came (unknown fields and all), not the envelope as parsed.
            found = await execute(self._redis, "XRANGE", self._stream, entry_id, entry_id)
            if found and found[0][1] is not None:
                original: Sequence[bytes] = found[0][1]
            else:  # deleted meanwhile (XDEL, lossy trimming): what was read of it
                original = fields_args(delivery.envelope.to_fields())
            pipe = self._redis.pipeline(transaction=True)
            pipe.execute_command(
                "XADD",
                self.keys.dead,
                "*",
                *dead_letter_args(self._dlq_fields(entry_id, reason, details, attempts), original),
            )
            pipe.execute_command("XACK", self._stream, self.group, entry_id)
            pipe.execute_command("ZREM", self._delay, entry_id)
            await pipe.execute()
        except Exception as exc:
            await self._handle_error("dead-lettering", exc)

    async def renew(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        if not deliveries:
            return []
        try:
            lost = await self._transport._renew(
                keys=[self._stream],
                args=[self.group, self.consumer, *[d.delivery_id for d in deliveries]],
            )
        except Exception as exc:
            await self._handle_error("renewing leases", exc)
            return list(deliveries)  # the group was recreated: nothing of it is pending
        if not lost:
            return []
        gone = {i.decode() if isinstance(i, bytes) else str(i) for i in lost}
        return [d for d in deliveries if d.delivery_id in gone]

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        try:
            await self._transport._retry_later(
                keys=[self._delay], args=[max(int(delay * 1000), 0), delivery.delivery_id]
            )
        except Exception as exc:
            await self._handle_error("scheduling a retry", exc)
            return
        self._next_due = min(self._next_due, time.monotonic() + delay)

    async def retries_waiting(self) -> int:
        try:
            waiting: int = await execute(self._redis, "ZCARD", self._delay)
        except Exception as exc:
            await self._handle_error("counting retries", exc)
            return 0
        return waiting

    async def close(self) -> None:
        """Leave the group; a consumer with nothing pending is removed from it."""
        if self._closed:
            return
        self._closed = True
        if self._records:
            # Records still in flight: confirmed (or written again) before the connection goes.
            try:
                await self._exchange(b"", 0)
            except Exception as exc:
                log.warning("could not confirm deduplication records on %s: %s", self.channel, exc)
        await self._conn.release()
        try:
            await self._transport._leave(keys=[self._stream], args=[self.group, self.consumer])
        except Exception as exc:
            if not (is_nogroup(exc) or is_transient(exc)):
                raise
            log.debug("could not leave group %s on %s: %s", self.group, self.channel, exc)
