"""The dead-letter store of the PostgreSQL transport: list, look up, replay and purge.

Dead letters are rows of ``dead_letters``: a copy of the message's columns
(the entry exactly as it was written), the reason, the group that rejected
it and the details (``jsonb``). They are written by the subscription
(``reject``) in the statement that deletes the group's delivery row.
A replay inserts the message again with ``only_group`` set to that group: the
trigger gives it to that group alone, and groups created later skip it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from toolkit.channels.base import DeadLetter
from toolkit.channels.postgres.rows import COLUMNS, dead_letter

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = ["PostgresDeadLetters"]

_SELECT: Final = f"SELECT id, reason, group_name, details::text, {', '.join(COLUMNS)} FROM "


class PostgresDeadLetters:
    """Implements DeadLetterStore for :class:`~toolkit.channels.postgres.PostgresTransport`
    (a base class of it: uses the transport's pool and schema)."""

    pool: Pool
    _s: str

    async def channel_id(self, channel: str) -> int:
        raise NotImplementedError

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters of ``channel``, oldest first, optionally of one routing key, at most ``count``."""
        ch = await self.channel_id(channel)
        query = _SELECT + f"{self._s}.dead_letters WHERE channel_id = %s"
        params: list[object] = [ch]
        if routing_key is not None:
            query += " AND routing_key = %s"
            params.append(routing_key)
        query += " ORDER BY id"
        if count is not None:
            query += " LIMIT %s"
            params.append(count)
        async with self.pool.connection("listing dead letters") as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(query, params)
            rows = await cur.fetchall()
        return [dead_letter(r[0], r[1], r[2], r[3], r[4:]) for r in rows]

    #: what a dead-letter id looks like, for messages about one that does not
    dead_letter_id_example = "42"

    @staticmethod
    def valid_dead_letter_id(text: str) -> bool:
        """A dead-letter row id: a positive bigint."""
        return text.isascii() and text.isdigit() and 0 < int(text) < 2**63

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        try:
            wanted = int(dead_letter_id)
        except ValueError:
            return None
        ch = await self.channel_id(channel)
        async with self.pool.connection("reading a dead letter") as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(
                _SELECT + f"{self._s}.dead_letters WHERE channel_id = %s AND id = %s",
                (ch, wanted),
            )
            row = await cur.fetchone()
        return dead_letter(row[0], row[1], row[2], row[3], row[4:]) if row else None

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back to their channel: same message id, delivery count 1.

        Only the group that dead-lettered a message receives it again. Dead
        letters that are not valid envelopes stay, and so do those whose
        group no longer exists. One transaction: each is replayed and removed,
        or stays.
        """
        letters = []
        for dead_id in dead_letter_ids:
            letter = await self.dead_letter(channel, dead_id)
            if letter is not None and letter.envelope is not None:
                letters.append(int(letter.dead_letter_id))
        if not letters:
            return 0
        ch = await self.channel_id(channel)
        s = self._s
        columns = ", ".join(COLUMNS)
        async with self.pool.connection("replaying dead letters") as conn:
            cur = await conn.execute(
                f"WITH d AS (DELETE FROM {s}.dead_letters dl USING {s}.groups g "
                "WHERE dl.id = ANY(%s) AND dl.channel_id = %s "
                "AND g.channel_id = dl.channel_id AND g.name = dl.group_name "
                f"RETURNING dl.*, g.id AS gid) "
                f"INSERT INTO {s}.messages (channel_id, only_group, {columns}) "
                f"SELECT channel_id, gid, {columns} FROM d ORDER BY d.id",
                (letters, ch),
            )
            return max(cur.rowcount, 0)

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        ch = await self.channel_id(channel)
        s = self._s
        async with self.pool.connection("purging dead letters") as conn:
            if dead_letter_ids is None:
                cur = await conn.execute(
                    f"DELETE FROM {s}.dead_letters WHERE channel_id = %s", (ch,)
                )
            else:
                ids = [int(i) for i in dead_letter_ids if i.isdigit()]
                cur = await conn.execute(
                    f"DELETE FROM {s}.dead_letters WHERE channel_id = %s AND id = ANY(%s)",
                    (ch, ids),
                )
            return max(cur.rowcount, 0)
