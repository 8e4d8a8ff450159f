"""The dead-letter store of the Redis transport: list, look up, replay and purge.

Each channel's dead letters are a stream of their own (``<stream>:dead``,
see :mod:`toolkit.channels.redis.keys`): the original fields, then the
``dlq_*`` fields saying why, which group and how many attempts. They are
written by the subscription (``reject``) together with the XACK.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis.asyncio

from toolkit.channels.base import DeadLetter
from toolkit.channels.redis.entries import F_REPLAY_GROUP, parse_dead_letter
from toolkit.channels.redis.options import Channels
from toolkit.channels.redis.raw import execute
from toolkit.channels.redis.resp import fields_args

__all__ = ["RedisDeadLetters"]

_DELETE_BATCH: Final = 500


class RedisDeadLetters:
    """Implements DeadLetterStore for :class:`~toolkit.channels.redis.RedisTransport`
    (a base class of it: uses the transport's client and channel settings)."""

    redis: redis.asyncio.Redis
    _channels: Channels

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters of ``channel``, oldest first, optionally of one routing key, at most ``count``."""
        dead_key = self._channels.keys(channel).dead
        found: list[DeadLetter] = []
        start = "-"
        while count is None or len(found) < count:
            chunk = await execute(
                self.redis, "XRANGE", dead_key, start, "+", "COUNT", _DELETE_BATCH
            )
            if not chunk:
                break
            for entry_id, flat in chunk:
                letter = parse_dead_letter(entry_id, flat)
                if routing_key is None or (
                    letter.envelope is not None
                    and letter.envelope.headers.routing_key == routing_key
                ):
                    found.append(letter)
                    if count is not None and len(found) >= count:
                        break
            if len(chunk) < _DELETE_BATCH:
                break
            start = "(" + chunk[-1][0].decode()
        return found

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        chunk = await execute(
            self.redis, "XRANGE", self._channels.keys(channel).dead, dead_letter_id, dead_letter_id
        )
        return parse_dead_letter(chunk[0][0], chunk[0][1]) if chunk else None

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back to their channel: same message id, delivery count 1.

        A replayed entry carries ``replay_group``: only the group that
        dead-lettered it handles it again (other groups of a shared stream
        acknowledge and skip it). Entries that are not valid envelopes stay.
        """
        keys = self._channels.keys(channel)
        xadd = self._channels.xadd(channel)
        replayed = 0
        for dead_id in dead_letter_ids:
            letter = await self.dead_letter(channel, dead_id)
            if letter is None or letter.envelope is None:
                continue
            fields = dict(letter.fields)
            if letter.group:
                fields[F_REPLAY_GROUP] = letter.group
            pipe = self.redis.pipeline(transaction=True)
            pipe.execute_command(*xadd.head(), *fields_args(fields))
            pipe.execute_command("XDEL", keys.dead, dead_id)
            await pipe.execute()
            replayed += 1
        return replayed

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        dead_key = self._channels.keys(channel).dead
        if dead_letter_ids is None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.execute_command("XLEN", dead_key)
            pipe.execute_command("DEL", dead_key)
            length, _ = await pipe.execute()
            return int(length)
        removed = 0
        ids = list(dead_letter_ids)
        for i in range(0, len(ids), _DELETE_BATCH):
            removed += int(await execute(self.redis, "XDEL", dead_key, *ids[i : i + _DELETE_BATCH]))
        return removed
