"""The dead-letter store of the Redis transport: list, look up, replay and purge.

Each channel's dead letters are a stream of their own (``<stream>:dead``,
see :mod:`toolkit.channels.redis.keys`): the ``dlq_*`` fields saying why,
which group and how many attempts, then ``dlq_original``, then the original
entry exactly as it was (layout: :func:`~toolkit.channels.redis.entries.dead_letter_args`).
They are written by the subscription (``reject``) together with the XACK.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import redis.asyncio

from toolkit.channels.base import DeadLetter
from toolkit.channels.redis.entries import (
    B_REPLAY_GROUP,
    pairs,
    parse_dead_letter,
    parse_entry,
    split_dead_letter,
)
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.options import Channels
from toolkit.channels.redis.raw import execute
from toolkit.wire import F_ROUTING_KEY

__all__ = ["RedisDeadLetters"]

_DELETE_BATCH: Final = 500


_ENTRY_ID: Final = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


class RedisDeadLetters:
    """Implements DeadLetterStore for :class:`~toolkit.channels.redis.RedisTransport`
    (a base class of it: uses the transport's client and channel settings)."""

    redis: redis.asyncio.Redis
    _channels: Channels

    if TYPE_CHECKING:

        async def open_band(
            self, channel: str, priority: int, groups: Sequence[str] = ()
        ) -> None: ...

    #: what a dead-letter id looks like, for messages about one that does not
    dead_letter_id_example = "1795817879034-0"

    @staticmethod
    def valid_dead_letter_id(text: str) -> bool:
        """A stream entry id (``<ms>-<seq>`` or ``<ms>``) Redis accepts: each part below 2**64."""
        match = _ENTRY_ID.fullmatch(text)
        return match is not None and all(int(p or 0) < 2**64 for p in match.groups())

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
                if routing_key is None or letter.fields.get(F_ROUTING_KEY) in (
                    routing_key,
                    routing_key.encode(),
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

        The entry appended is the original one, field for field and byte for
        byte, plus ``replay_group``: only the group that dead-lettered it
        handles it again (other groups of a shared stream acknowledge and skip
        it). Entries that are not valid envelopes stay.
        """
        keys = self._channels.keys(channel)
        replayed = 0
        for dead_id in dead_letter_ids:
            chunk = await execute(self.redis, "XRANGE", keys.dead, dead_id, dead_id)
            if not chunk:
                continue
            toolkit, original = split_dead_letter(chunk[0][1])
            try:
                priority = parse_entry(pairs(original)).headers.priority
            except ValueError:
                continue
            # Back to the stream it came from: its priority's band, or the channel's own.
            if priority:
                await self.open_band(channel, priority)
            xadd = self._channels.xadd(band_name(channel, priority))
            fields = [
                part
                for i in range(0, len(original) - 1, 2)
                if original[i] != B_REPLAY_GROUP
                for part in original[i : i + 2]
            ]
            if toolkit.get("group"):
                fields += (B_REPLAY_GROUP, toolkit["group"].encode())
            pipe = self.redis.pipeline(transaction=True)
            pipe.execute_command(*xadd.head(), *fields)
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
