"""What a channel holds on PostgreSQL right now (:class:`~toolkit.channels.base.ReportsStatus`).

Two statements on one connection, read-only (the schema is never installed
here: a schema or a channel that does not exist yet is an empty channel):

* the channel's id, the server's clock, its length (an index-only count of
  ``messages`` by the primary key) and its dead letters (by their index);
* one pass over each group's delivery rows (the ``deliveries_due`` index,
  group by group), aggregated per group and holding consumer, joined with
  the one message row of each group's oldest pending delivery for its age.

The figures, from the delivery rows (``docs/postgres.md``, "Status"):
``deliveries = 0`` is not yet delivered (lag); ``deliveries > 0`` is pending;
of those, held by nobody and not yet due is a retry waiting (the definition
of :meth:`~toolkit.channels.postgres.PostgresSubscription.retries_waiting`).
A consumer is whoever a pending row names: one holding nothing is not known.
Its idle time comes from its latest lease, which ends a visibility timeout
after its last claim or renewal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psycopg import errors as pg_errors

from toolkit.channels.status import ChannelStatus, ConsumerStatus, GroupStatus

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = ["PostgresStatus"]


@dataclass
class _Group:
    lag: int = 0
    pending: int = 0
    retrying: int = 0
    oldest: tuple[int, float | None] | None = None
    consumers: list[ConsumerStatus] = field(default_factory=list)


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
        # Grouped per (group, consumer): the rows held by nobody (the backlog, retries
        # waiting, leases handed back) are the group's NULL consumer. ``lease_end`` is
        # the consumer's latest lease: its last claim or renewal + the visibility timeout.
        groups = (
            "WITH a AS (SELECT g.name, d.consumer, "
            "count(d.id) FILTER (WHERE d.deliveries = 0) AS lag, "
            "count(d.id) FILTER (WHERE d.deliveries > 0) AS pending, "
            "count(d.id) FILTER (WHERE d.deliveries > 0 AND d.consumer IS NULL "
            "AND d.available_at > now()) AS retrying, "
            "min(d.entry) FILTER (WHERE d.deliveries > 0) AS oldest, "
            "extract(epoch FROM now() - max(d.available_at)) AS since_lease_end "
            f"FROM {s}.groups g LEFT JOIN {s}.deliveries d ON d.group_id = g.id "
            "WHERE g.channel_id = %(ch)s::int4 GROUP BY g.name, d.consumer) "
            "SELECT a.name, a.consumer, a.lag, a.pending, a.retrying, a.oldest, "
            "a.since_lease_end, extract(epoch FROM now() - m.available_at) "
            f"FROM a LEFT JOIN {s}.messages m ON m.channel_id = %(ch)s::int4 AND m.id = a.oldest"
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
        groups: dict[str, _Group] = {}
        for name, consumer, lag, pending, retrying, oldest, since_lease_end, age in rows:
            group = groups.setdefault(name, _Group())
            group.lag += lag
            group.pending += pending
            group.retrying += retrying
            if oldest is not None and (group.oldest is None or oldest < group.oldest[0]):
                # A message deleted by hand while still pending has no age to tell.
                group.oldest = (oldest, None if age is None else max(float(age), 0.0))
            if consumer is not None and pending:
                idle = max(visibility + float(since_lease_end), 0.0)
                group.consumers.append(ConsumerStatus(name=consumer, pending=pending, idle=idle))
        return ChannelStatus(
            channel=channel,
            length=int(length),
            dead_letters=int(dead_letters),
            groups=[
                GroupStatus(
                    name=name,
                    lag=g.lag,
                    pending=g.pending,
                    retrying=g.retrying,
                    oldest_pending_age=None if g.oldest is None else g.oldest[1],
                    consumers=sorted(g.consumers, key=lambda c: c.name),
                )
                for name, g in sorted(groups.items())
            ],
            visibility_timeout=visibility,
        )
