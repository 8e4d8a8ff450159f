"""Scheduled messages on PostgreSQL: a message row whose ``available_at`` is its due time.

A scheduled message is inserted like any other, with its due time in the
``deliver_at`` column and ``available_at`` set from it (on the server, not
before ``now()``). The trigger copies ``available_at`` into the delivery rows
of every group, and ``create_group`` does the same for a group created later,
so the claim query (``available_at <= now()``) cannot hand it out early on any
group and needs no change. Nothing has to move it when due: the rows simply
become claimable, whether or not a consumer ran meanwhile, and like every row
they outlive consumers and a restart of the server. An idle consumer waits at
most until the group's next ``available_at`` (``PostgresSubscription.receive``).

Waiting messages are those with ``deliver_at`` set and ``available_at`` still
ahead (the partial indexes ``messages_scheduled``, by due time, and
``messages_scheduled_id``). Cancelling deletes such a
message and its delivery rows in one statement; a message scheduled again
with the id of one still waiting replaces it, in the statement that inserts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from toolkit.channels.base import Delivery, ScheduledMessage
from toolkit.channels.postgres.rows import COLUMNS, read_row
from toolkit.wire import WIRE_FIELDS

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = ["DUE", "PostgresSchedules", "drop_waiting"]

#: the ``deliver_at`` column of a row in ``COLUMNS`` order (after the wire fields)
DUE: Final = len(WIRE_FIELDS)


def drop_waiting(s: str, messages: str) -> str:
    """CTEs ``gone`` (the waiting messages named by ``messages``, a relation of
    ``(channel_id, message_id)``, deleted) and ``gone_deliveries`` (their delivery rows,
    deleted): a waiting message's delivery rows still carry its ``available_at``, which
    finds them on the ``deliveries_due`` index."""
    # ``available_at - now()``, not ``available_at > now()``: a range on available_at
    # would let a planner misled by stale statistics walk every waiting message per id
    # (messages_scheduled) instead of looking each id up (messages_scheduled_id).
    return (
        f"gone AS (DELETE FROM {s}.messages m USING {messages} x "
        "WHERE m.channel_id = x.channel_id AND m.deliver_at IS NOT NULL "
        "AND m.available_at - now() > interval '0' AND m.message_id = x.message_id "
        "RETURNING m.channel_id, m.id, m.available_at), "
        # Each delivery row looked up by all three columns of deliveries_due in a
        # subquery kept apart (OFFSET 0), then deleted by ctid: joined plainly, a planner
        # misled by stale statistics scans every row of the group per message instead.
        f"gone_deliveries AS (DELETE FROM {s}.deliveries d WHERE d.ctid = ANY(ARRAY("
        f"SELECT t.ctid FROM gone JOIN {s}.groups g ON g.channel_id = gone.channel_id, "
        f"LATERAL (SELECT ctid FROM {s}.deliveries y WHERE y.group_id = g.id "
        "AND y.available_at = gone.available_at AND y.entry = gone.id OFFSET 0) t)) "
        "RETURNING 1)"
    )


class PostgresSchedules:
    """Implements Schedules for :class:`~toolkit.channels.postgres.PostgresTransport` (a base
    class of it: uses the transport's pool and schema; sending is the transport's)."""

    pool: Pool
    _s: str
    max_message_bytes: int
    schedules_messages = True

    async def channel_id(self, channel: str) -> int:
        raise NotImplementedError

    def _schedule_queries(self) -> tuple[bytes, bytes]:
        """(listing: channel id, count; cancelling: channel id, message ids)."""
        s = self._s
        listing = (
            f"SELECT id, {', '.join(COLUMNS)} FROM {s}.messages "
            "WHERE channel_id = %s::int4 AND deliver_at IS NOT NULL AND available_at > now() "
            "ORDER BY available_at, id LIMIT %s::int8"
        )
        cancelling = (
            "WITH x AS (SELECT %s::int4 AS channel_id, unnest(%s::text[]) AS message_id), "
            f"{drop_waiting(s, 'x')} SELECT count(*) FROM gone"
        )
        return listing.encode(), cancelling.encode()

    async def scheduled(self, channel: str, *, count: int | None = None) -> list[ScheduledMessage]:
        ch = await self.channel_id(channel)
        query = self._schedule_queries()[0]
        rows = await self._run("listing scheduled messages", query, (ch, count))
        found = []
        for row in rows:
            columns = row[1:]
            got = read_row(columns, channel, self.max_message_bytes, row[0], 0)
            envelope = got.envelope if isinstance(got, Delivery) else None
            message_id = columns[0] or (envelope.headers.message_id if envelope else "")
            found.append(ScheduledMessage(channel, message_id, int(columns[DUE]), envelope))
        return found

    async def cancel_scheduled(self, channel: str, message_ids: Sequence[str]) -> int:
        if not message_ids:
            return 0
        ch = await self.channel_id(channel)
        query = self._schedule_queries()[1]
        ids = list(dict.fromkeys(message_ids))
        rows = await self._run("cancelling scheduled messages", query, (ch, ids))
        return int(rows[0][0])

    async def _run(self, doing: str, query: bytes, params: Sequence[Any]) -> list[Any]:
        async with self.pool.connection(doing) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()
