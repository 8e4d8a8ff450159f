"""Deduplication on Redis: the message ids a group handled, in one sorted set per group.

The set is ``{prefix}:{<channel>}:seen:<group>`` (:mod:`toolkit.channels.redis.keys`:
hash-tagged like the stream, so it works on a cluster), each id scored by when
its record expires (Unix ms, the consumer's clock: windows are minutes to days,
so clock skew between hosts is noise). Per batch:

* ``seen``: one ``ZMSCORE`` for the whole batch; an id whose score is still
  in the future was handled.
* ``remember``: ``ZADD`` of the batch, ``ZREMRANGEBYSCORE`` of what expired,
  ``PEXPIRE`` of the key by the window (a group that stops consuming leaves
  nothing behind), written together in one round trip.

Both go on the subscription's held connection, packed by hand like its
``XACK`` (:mod:`toolkit.channels.redis.resp`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from toolkit.channels.base import Delivery
from toolkit.channels.redis.resp import bulk

if TYPE_CHECKING:
    from toolkit.channels.redis.connection import HeldConnection, HeldNodeConnection
    from toolkit.channels.redis.keys import ChannelKeys
    from toolkit.channels.redis.transport import RedisTransport

__all__ = ["RedisDeduplication"]


def _ids(deliveries: Sequence[Delivery]) -> list[bytes]:
    return [d.message_id.encode() for d in deliveries]


class RedisDeduplication:
    """The :class:`~toolkit.channels.base.Deduplicates` half of a Redis subscription."""

    #: the seen set's name, packed (made on first use)
    _seen_key = b""

    if TYPE_CHECKING:
        _transport: RedisTransport
        _conn: HeldConnection | HeldNodeConnection
        keys: ChannelKeys
        group: str
        channel: str

        async def _handle_error(self, what: str, exc: BaseException) -> None: ...

    def _seen_bulk(self) -> bytes:
        if not self._seen_key:
            self._seen_key = bulk(self.keys.seen(self.group).encode())
        return self._seen_key

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        if not deliveries:
            return set()
        ids = _ids(deliveries)
        payload = b"".join(
            [
                b"*%d\r\n$7\r\nZMSCORE\r\n" % (2 + len(ids)),
                self._seen_bulk(),
                *[bulk(i) for i in ids],
            ]
        )
        try:
            scores = await self._transport._call_packed(payload, self._conn)
        except Exception as exc:
            await self._handle_error("reading handled message ids", exc)
            return set()
        now_ms = time.time() * 1000
        return {
            message_id.decode()
            for message_id, score in zip(ids, scores, strict=True)
            if score is not None and float(score) > now_ms
        }

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        if not deliveries:
            return
        ids = _ids(deliveries)
        now_ms = int(time.time() * 1000)
        expires = bulk(b"%d" % (now_ms + int(window * 1000)))
        key = self._seen_bulk()
        payload = b"".join(
            [
                b"*%d\r\n$4\r\nZADD\r\n" % (2 + 2 * len(ids)),
                key,
                *[expires + bulk(i) for i in ids],
                b"*4\r\n$16\r\nZREMRANGEBYSCORE\r\n",
                key,
                b"$4\r\n-inf\r\n",
                bulk(b"%d" % now_ms),
                b"*3\r\n$7\r\nPEXPIRE\r\n",
                key,
                bulk(b"%d" % max(int(window * 1000), 1)),
            ]
        )
        try:
            replies = await self._transport._round_trip(payload, 3, self._conn)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        except Exception as exc:
            await self._handle_error("recording handled message ids", exc)
