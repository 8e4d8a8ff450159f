"""The dead-letter store of the Redis transport: list, look up, replay and purge.

Each channel's dead letters are a stream of their own (``<stream>:dead``,
see :mod:`toolkit.channels.redis.keys`): the ``dlq_*`` fields saying why,
which group and how many attempts, then ``dlq_original``, then the original
entry exactly as it was (layout: :func:`~toolkit.channels.redis.entries.dead_letter_args`).
They are written by the subscription (``reject``) together with the XACK.

A sharded channel (:mod:`~toolkit.channels.redis.shards`) has a dead-letter
stream per shard (its priority bands share it): listing merges them by time,
and a dead letter of shard i > 0 is named ``<entry id>#<i>`` (entry ids
repeat across streams), so that show, replay and purge find its shard; a
replay goes back to that shard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import redis.asyncio

from toolkit.channels.base import DeadLetter
from toolkit.channels.redis.entries import (
    B_REPLAY_GROUP,
    id_order,
    pairs,
    parse_dead_letter,
    parse_entry,
    split_dead_letter,
)
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.options import MAX_SHARDS, Channels
from toolkit.channels.redis.raw import execute
from toolkit.channels.redis.shards import shard_name
from toolkit.wire import F_ROUTING_KEY

__all__ = ["RedisDeadLetters"]

_DELETE_BATCH: Final = 500


#: an entry id, and the shard after ``#`` (none: shard 0)
_ENTRY_ID: Final = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?(?:#([0-9]{1,4}))?")


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
        """A stream entry id (``<ms>-<seq>`` or ``<ms>``) Redis accepts: each part below 2**64;
        ``#<shard>`` after it on a sharded channel."""
        match = _ENTRY_ID.fullmatch(text)
        if match is None:
            return False
        ms, seq, shard = match.groups()
        return int(ms) < 2**64 and int(seq or 0) < 2**64 and int(shard or 0) < MAX_SHARDS

    def _dead_keys(self, channel: str) -> list[tuple[str, str]]:
        """(id suffix, dead-letter stream) of each shard of ``channel``."""
        return [
            (f"#{i}" if i else "", self._channels.keys(shard_name(channel, i)).dead)
            for i in range(self._channels.options(channel).shards)
        ]

    def _locate(self, channel: str, dead_letter_id: str) -> tuple[str, str, str] | None:
        """(shard, its dead-letter stream, entry id) of a dead letter; None for an id
        that names no shard of ``channel``."""
        entry, _, index = dead_letter_id.partition("#")
        shard = int(index) if index.isascii() and index.isdigit() else -1 if index else 0
        if not 0 <= shard < self._channels.options(channel).shards:
            return None
        name = shard_name(channel, shard)
        return name, self._channels.keys(name).dead, entry

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters of ``channel``, oldest first, optionally of one routing key, at most
        ``count``; a sharded channel's merged by time."""
        found: list[tuple[tuple[tuple[int, int], int], DeadLetter]] = []
        for index, (suffix, dead_key) in enumerate(self._dead_keys(channel)):
            for letter in await self._read_dead(dead_key, routing_key, count):
                order = (id_order(letter.dead_letter_id), index)
                letter.dead_letter_id += suffix
                found.append((order, letter))
        if len(found) > 1:
            found.sort(key=lambda pair: pair[0])
        return [letter for _, letter in found[:count]]

    async def _read_dead(
        self, dead_key: str, routing_key: str | None, count: int | None
    ) -> list[DeadLetter]:
        """One dead-letter stream's, oldest first."""
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
        located = self._locate(channel, dead_letter_id)
        if located is None:
            return None
        _, dead_key, entry = located
        chunk = await execute(self.redis, "XRANGE", dead_key, entry, entry)
        if not chunk:
            return None
        letter = parse_dead_letter(chunk[0][0], chunk[0][1])
        letter.dead_letter_id += dead_letter_id[len(entry) :]  # its shard's ``#i``
        return letter

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back to their channel: same message id, delivery count 1.

        The entry appended is the original one, field for field and byte for
        byte, plus ``replay_group``: only the group that dead-lettered it
        handles it again (other groups of a shared stream acknowledge and skip
        it). It goes back to the stream it came from: its shard's, its
        priority's band. Entries that are not valid envelopes stay.
        """
        replayed = 0
        for dead_id in dead_letter_ids:
            located = self._locate(channel, dead_id)
            if located is None:
                continue
            shard, dead_key, entry = located
            chunk = await execute(self.redis, "XRANGE", dead_key, entry, entry)
            if not chunk:
                continue
            toolkit, original = split_dead_letter(chunk[0][1])
            try:
                priority = parse_entry(pairs(original)).headers.priority
            except ValueError:
                continue
            if priority:
                await self.open_band(shard, priority)
            xadd = self._channels.xadd(band_name(shard, priority))
            fields = [
                part
                for i in range(0, len(original) - 1, 2)
                if original[i] != B_REPLAY_GROUP
                for part in original[i : i + 2]
            ]
            if toolkit.get("group"):
                fields += (B_REPLAY_GROUP, toolkit["group"].encode())
            # One slot: a shard's bands and dead letters share its hash tag.
            pipe = self.redis.pipeline(transaction=True)
            pipe.execute_command(*xadd.head(), *fields)
            pipe.execute_command("XDEL", dead_key, entry)
            await pipe.execute()
            replayed += 1
        return replayed

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        if dead_letter_ids is None:
            removed = 0
            for _, dead_key in self._dead_keys(channel):
                pipe = self.redis.pipeline(transaction=True)
                pipe.execute_command("XLEN", dead_key)
                pipe.execute_command("DEL", dead_key)
                length, _ = await pipe.execute()
                removed += int(length)
            return removed
        by_stream: dict[str, list[str]] = {}
        for dead_id in dead_letter_ids:
            located = self._locate(channel, dead_id)
            if located is not None:
                by_stream.setdefault(located[1], []).append(located[2])
        removed = 0
        for dead_key, ids in by_stream.items():
            for i in range(0, len(ids), _DELETE_BATCH):
                batch = ids[i : i + _DELETE_BATCH]
                removed += int(await execute(self.redis, "XDEL", dead_key, *batch))
        return removed
