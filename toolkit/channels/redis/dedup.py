"""Deduplication on Redis: the message ids a group handled, in one sorted set per group.

The set is ``{prefix}:{<channel>}:seen:<group>`` (:mod:`toolkit.channels.redis.keys`:
hash-tagged like the stream, so it works on a cluster), each id scored by when
its record expires (Unix ms, the consumer's clock: windows are minutes to days,
so clock skew between hosts is noise). Per batch:

* ``seen``: one ``ZMSCORE`` for the whole batch; an id whose score is still
  in the future was handled. With a backlog (the last read filled its batch)
  the read itself is a script that reads and looks the ids up
  (``READ_SEEN``), and ``seen`` answers from that without a round trip.
* ``remember``: ``ZADD`` of the step's ids, *written* at once on the
  subscription's held connection without waiting for the reply: the replies
  are read with the next round trip (the ``XACK`` and ``XREADGROUP`` that
  follow the batch). A record costs a write, not a round trip, and still
  leaves the consumer as soon as its step's handlers succeeded: a crash
  repeats at most the step whose record was not written yet.
* once per batch, in the write of that next round trip: ``ZREMRANGEBYSCORE``
  of what expired and ``PEXPIRE`` of the key by the window (a group that
  stops consuming leaves nothing behind; the batch's first record sets it
  too, for a consumer killed before that round trip).

Records are kept until their replies are read. When the connection they went
out on is lost (dropped, or the slot moved to another master), they are
written again ahead of the next round trip's commands (``ZADD`` of an id
again only moves its expiry), so an outage cannot lose a record the
acknowledgement behind it depends on. An error reply to a record (the server
out of memory) is raised by that round trip; the acknowledgement written
behind it has been made by then, so those messages are handled and
acknowledged without a record (a copy sent later would be handled again),
never lost.

Everything goes on the subscription's held connection, packed by hand like
its ``XACK`` (:mod:`toolkit.channels.redis.resp`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import redis
from redis.exceptions import AskError

from toolkit.channels.base import Delivery
from toolkit.channels.redis.connection import read_replies
from toolkit.channels.redis.resp import bulk

if TYPE_CHECKING:
    from toolkit.channels.redis.connection import HeldConnection, HeldNodeConnection
    from toolkit.channels.redis.keys import ChannelKeys
    from toolkit.channels.redis.transport import RedisTransport

__all__ = ["RedisDeduplication"]

#: replies to the upkeep written ahead of a round trip after records (ZREMRANGEBYSCORE, PEXPIRE)
_UPKEEP: Final = 2


#: an entry the last read did not check
_UNCHECKED: Final = b"?"


def _ids(deliveries: Sequence[Delivery]) -> list[bytes]:
    return [d.message_id.encode() for d in deliveries]


def _live(ids: Sequence[bytes], scores: Sequence[Any]) -> set[str]:
    """The ids whose record (score: its expiry, Unix ms) has not expired."""
    now_ms = time.time() * 1000
    return {
        message_id.decode()
        for message_id, score in zip(ids, scores, strict=True)
        if score is not None and float(score) > now_ms
    }


class RedisDeduplication:
    """The :class:`~toolkit.channels.base.Deduplicates` half of a Redis subscription."""

    #: the seen set's name, packed (made on first use)
    _seen_key = b""
    #: the window of the last record, in ms
    _window_ms = 1
    #: how many of ``_records`` were written on the connection in hand
    _written = 0

    if TYPE_CHECKING:
        _transport: RedisTransport
        _conn: HeldConnection | HeldNodeConnection
        keys: ChannelKeys
        group: str
        channel: str
        #: records written, their replies not read yet (in the order written)
        _records: list[bytes]
        _checks: bool
        _checked: dict[bytes, Any] | None

        async def _handle_error(self, what: str, exc: BaseException) -> None: ...

    def _seen_bulk(self) -> bytes:
        if not self._seen_key:
            self._seen_key = bulk(self.keys.seen(self.group).encode())
        return self._seen_key

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        if not deliveries:
            return set()
        self._checks = True
        ids = _ids(deliveries)
        checked = self._checked
        if checked is not None:
            # Checked by the read that brought them (READ_SEEN): no round trip.
            scores = [checked.get(d.delivery_id.encode(), _UNCHECKED) for d in deliveries]
            if _UNCHECKED not in scores:
                return _live(ids, scores)
        payload = b"".join(
            [
                b"*%d\r\n$7\r\nZMSCORE\r\n" % (2 + len(ids)),
                self._seen_bulk(),
                *[bulk(i) for i in ids],
            ]
        )
        try:
            scores = await self._call(payload)
        except Exception as exc:
            await self._handle_error("reading handled message ids", exc)
            return set()
        return _live(ids, scores)

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        if not deliveries:
            return
        ids = _ids(deliveries)
        window_ms = self._window_ms = max(int(window * 1000), 1)
        expires = bulk(b"%d" % (int(time.time() * 1000) + window_ms))
        key = self._seen_bulk()
        records = self._records
        record = b"".join(
            [b"*%d\r\n$4\r\nZADD\r\n" % (2 + 2 * len(ids)), key, *[expires + bulk(i) for i in ids]]
        )
        if not records:
            # The first of a batch sets the key's expiry too: a consumer killed before the
            # next round trip (which sets it again) leaves no key behind for good.
            record += self._expire()
        records.append(record)
        held = self._conn
        # Those not on the connection in hand (all of them after it was lost) go now.
        written = self._written if held.unread else 0
        try:
            conn = await held.get()
            await conn.send_packed_command(b"".join(records[written:]))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            await held.drop()  # kept: written again with the next round trip
            await self._handle_error("recording handled message ids", exc)
            return
        except BaseException:
            await held.drop()
            raise
        self._written = len(records)
        held.unread = self._owed()

    def _owed(self) -> int:
        """Replies to the records: a ZADD each, and the first one's PEXPIRE."""
        return len(self._records) + 1 if self._records else 0

    def _expire(self) -> bytes:
        return b"*3\r\n$7\r\nPEXPIRE\r\n%s%s" % (self._seen_bulk(), bulk(b"%d" % self._window_ms))

    async def _call(self, payload: bytes) -> Any:
        """One packed command on the held connection, its reply (an error reply raised),
        after the replies of the records in flight."""
        if not self._records:
            return await self._transport._call_packed(payload, self._conn)
        (reply,) = await self._exchange(payload, 1)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _exchange(self, payload: bytes, replies: int) -> list[Any]:
        """``payload`` on the held connection, its ``replies`` replies (an error reply as
        its exception), after reading those of the records in flight.

        Expired records are dropped in the same write. Records whose replies are
        lost (the connection failed, or they were redirected) are written again
        ahead of ``payload``; an error reply to a record is raised.
        """
        records = self._records
        if not records:
            return await self._transport._round_trip(payload, replies, self._conn)
        prune = b"*4\r\n$16\r\nZREMRANGEBYSCORE\r\n%s$4\r\n-inf\r\n%s" % (
            self._seen_bulk(),
            bulk(b"%d" % int(time.time() * 1000)),
        )
        # Once per batch: what expired goes, and the key outlives its newest record.
        payload = prune + self._expire() + payload
        replies += _UPKEEP
        held = self._conn
        owed = self._owed()
        out: list[Any] | None = None
        if held.unread == owed:
            # Still on the connection they were written to: read their replies first.
            conn = await held.get()
            if held.unread == owed:
                try:
                    await conn.send_packed_command(payload)
                    out = await read_replies(conn, owed + replies)
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    await held.drop()
                except BaseException:
                    await held.drop()
                    raise
                held.unread = 0
        if out is None or isinstance(out[0], AskError):  # (MOVED is an AskError)
            # Lost or redirected (then none of it ran): all of it again, where the slot is.
            out = await self._transport._round_trip(
                b"".join(records) + payload, owed + replies, held
            )
        self._records = []
        for reply in out[: owed + _UPKEEP]:
            if isinstance(reply, Exception):
                raise reply
        return out[owed + _UPKEEP :]
