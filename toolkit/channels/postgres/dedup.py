"""Deduplication on PostgreSQL: the message ids a group handled, in the ``handled`` table.

One row per (group, message id) with the time its record expires
(``handled (group_id, message_id, expires_at)``, made with the pipe's schema:
:mod:`toolkit.channels.postgres.schema`; a group is one service on one
channel). Per batch, one statement each:

* ``seen``: the batch's ids with a row not yet expired;
* ``remember``: insert the batch's ids, or move the expiry of those there.

Expired rows are deleted by the group's consumers, one statement at most
every :data:`CLEANUP_EVERY` seconds per consumer (the index on
``expires_at`` keeps it a range scan).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from toolkit.channels.base import Delivery

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = ["CLEANUP_EVERY", "PostgresDeduplication"]

#: seconds between deletions of a group's expired records by one consumer
CLEANUP_EVERY: Final = 60.0


class PostgresDeduplication:
    """The :class:`~toolkit.channels.base.Deduplicates` half of a PostgreSQL subscription."""

    #: monotonic time of this consumer's next deletion of expired records
    _next_cleanup = 0.0

    if TYPE_CHECKING:
        _pool: Pool
        _s: str
        group_id: int
        channel: str

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        if not deliveries:
            return set()
        async with self._pool.connection(f"reading handled ids on {self.channel!r}") as conn:
            cur = await conn.execute(
                f"SELECT message_id FROM {self._s}.handled WHERE group_id = %s::int4 "
                "AND message_id = ANY(%s::text[]) AND expires_at > now()",
                (self.group_id, [d.message_id for d in deliveries]),
            )
            return {str(row[0]) for row in await cur.fetchall()}

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        if not deliveries:
            return
        s = self._s
        # Sorted and distinct: concurrent consumers lock rows in one order (no deadlock),
        # and ON CONFLICT may not touch a row twice in one statement.
        ids = sorted({d.message_id for d in deliveries})
        async with self._pool.connection(f"recording handled ids on {self.channel!r}") as conn:
            await conn.execute(
                f"INSERT INTO {s}.handled (group_id, message_id, expires_at) "
                "SELECT %s::int4, i, now() + %s::float8 * interval '1 second' "
                "FROM unnest(%s::text[]) AS i "
                "ON CONFLICT (group_id, message_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                (self.group_id, window, ids),
            )
            if time.monotonic() >= self._next_cleanup:
                self._next_cleanup = time.monotonic() + CLEANUP_EVERY
                await conn.execute(
                    f"DELETE FROM {s}.handled WHERE group_id = %s::int4 AND expires_at <= now()",
                    (self.group_id,),
                )
