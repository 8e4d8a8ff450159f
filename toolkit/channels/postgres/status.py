"""What a channel holds on PostgreSQL right now (:class:`~toolkit.channels.base.ReportsStatus`).

Two statements on one connection, read-only (the schema is never installed
here: a schema or a channel that does not exist yet is an empty channel):

* the channel's id, its length (an index-only count of its ``messages`` by the
  primary key) and its dead letters (an index-only count);
* per group, one aggregate over its delivery rows (a range of the
  ``deliveries_due`` index: nothing sorted or hashed), and one primary key
  lookup for the age of its oldest pending message.

Exact figures cost a count: the length grows with the messages the channel
keeps, the rest with each group's unsettled rows (``docs/postgres.md``,
"Status", has the figures). From the delivery rows: ``deliveries = 0`` is not
yet delivered (lag); ``deliveries > 0`` is pending; of those, held by nobody
and not yet due is a retry waiting (as
:meth:`~toolkit.channels.postgres.PostgresSubscription.retries_waiting` counts).
A consumer is whoever pending rows name: one holding nothing is not known.
Its idle time comes from its latest lease, which ends a visibility timeout
after its last claim or renewal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import errors as pg_errors

from toolkit.channels.status import ChannelStatus, ConsumerStatus, GroupStatus

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = ["PostgresStatus"]


class PostgresStatus:
    """``status`` for :class:`~toolkit.channels.postgres.PostgresTransport` (a base class
    of it: uses the transport's pool, schema and visibility timeout)."""

    pool: Pool
    _s: str
    visibility_timeout: float

    def _status_queries(self) -> tuple[bytes, bytes]:
        s = self._s
        channel = (
            "SELECT c.id, "
            f"(SELECT count(*) FROM {s}.messages m WHERE m.channel_id = c.id), "
            f"(SELECT count(*) FROM {s}.dead_letters d WHERE d.channel_id = c.id) "
            f"FROM {s}.channels c WHERE c.name = %s"
        )
        # One aggregate over each group's rows (no grouping: nothing sorted or hashed
        # whatever the backlog); the rows a consumer holds, a handful, come back as
        # arrays. The oldest pending message's age is one primary key lookup.
        groups = (
            "SELECT g.name, a.lag, a.pending, a.retrying, "
            "(SELECT extract(epoch FROM now() - m.available_at) "
            f"FROM {s}.messages m WHERE m.channel_id = %(ch)s::int4 AND m.id = a.oldest), "
            "a.holders, a.since_lease_end "
            f"FROM {s}.groups g CROSS JOIN LATERAL (SELECT "
            "count(*) FILTER (WHERE d.deliveries = 0) AS lag, "
            "count(*) FILTER (WHERE d.deliveries > 0) AS pending, "
            "count(*) FILTER (WHERE d.deliveries > 0 AND d.consumer IS NULL "
            "AND d.available_at > now()) AS retrying, "
            "min(d.entry) FILTER (WHERE d.deliveries > 0) AS oldest, "
            "array_agg(d.consumer) FILTER (WHERE d.consumer IS NOT NULL) AS holders, "
            "array_agg(extract(epoch FROM now() - d.available_at)::float8) "
            "FILTER (WHERE d.consumer IS NOT NULL) AS since_lease_end "
            f"FROM {s}.deliveries d WHERE d.group_id = g.id) a "
            "WHERE g.channel_id = %(ch)s::int4 ORDER BY g.name"
        )
        return channel.encode(), groups.encode()

    async def status(self, channel: str) -> ChannelStatus:
        """The channel's length, dead letters, groups and the consumers holding messages."""
        channel_query, groups_query = self._status_queries()
        async with self.pool.connection("reading the channel's status") as conn:
            try:
                cur = await conn.execute(channel_query, (channel,))
            except pg_errors.UndefinedTable:
                return ChannelStatus(channel=channel, length=0, dead_letters=0)
            found = await cur.fetchone()
            if found is None:
                return ChannelStatus(channel=channel, length=0, dead_letters=0)
            channel_id, length, dead_letters = found
            cur = await conn.execute(groups_query, {"ch": channel_id})
            rows = await cur.fetchall()
        visibility = self.visibility_timeout
        groups = []
        for name, lag, pending, retrying, age, holders, since_lease_end in rows:
            # Each consumer's latest lease ended (or ends) ``since`` seconds ago: it
            # began, at its last claim or renewal, a visibility timeout before.
            held: dict[str, tuple[int, float]] = {}
            for consumer, since in zip(holders or (), since_lease_end or (), strict=True):
                count, latest = held.get(consumer, (0, since))
                held[consumer] = (count + 1, min(latest, since))
            groups.append(
                GroupStatus(
                    name=name,
                    lag=int(lag),
                    pending=int(pending),
                    retrying=int(retrying),
                    # None too for a message deleted by hand while still pending.
                    oldest_pending_age=None if age is None else max(float(age), 0.0),
                    consumers=[
                        ConsumerStatus(name=c, pending=n, idle=max(visibility + since, 0.0))
                        for c, (n, since) in sorted(held.items())
                    ],
                )
            )
        return ChannelStatus(
            channel=channel,
            length=int(length),
            dead_letters=int(dead_letters),
            groups=groups,
            visibility_timeout=visibility,
        )
