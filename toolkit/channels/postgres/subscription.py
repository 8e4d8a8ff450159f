"""One consumer in one group on one PostgreSQL channel: claiming and settling.

* ``receive``: one statement claims up to ``n`` due delivery rows of the group
  (``FOR UPDATE SKIP LOCKED``, highest priority first, then oldest first), sets their ``available_at`` to
  now + the visibility timeout (the lease), counts the delivery, names this
  consumer, and returns them joined with their messages. Nothing due: wait
  for a notification on the channel, the next due time or the poll interval,
  whichever comes first. A consumer that dies keeps nothing: its rows come
  due again when the lease runs out.
* ``renew``: the rows still held (same consumer, same delivery count) get a
  fresh lease.
* ``ack``: the group's delivery rows are deleted (one statement per batch).
* ``retry_later``: the row's ``available_at`` moves to now + delay and it is
  held by nobody: any consumer of the group claims it once due.
* ``reject``: one statement deletes the delivery row and copies the message
  into ``dead_letters`` (with reason and details): both or neither.

Rows that are not envelopes are dead-lettered on receipt, in one statement.
Every so many claims, settled messages beyond the channel's kept history are
deleted (:mod:`~toolkit.channels.postgres.retention`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from toolkit.channels.base import Delivery
from toolkit.channels.postgres.dedup import PostgresDeduplication
from toolkit.channels.postgres.exactly_once import PostgresExactlyOnce
from toolkit.channels.postgres.retention import TRIM_EVERY, PostgresRetention, trim_queries
from toolkit.channels.postgres.rows import COLUMNS, encode_details, read_row, row_of_envelope
from toolkit.channels.postgres.schema import lock_namespace
from toolkit.priority import MAX_PRIORITY

if TYPE_CHECKING:
    from toolkit.channels.postgres.transport import PostgresTransport

__all__ = ["PostgresSubscription"]

log = logging.getLogger("toolkit.postgres")

_M_COLUMNS: Final = ", ".join(f"m.{c}" for c in COLUMNS)


class PostgresSubscription(PostgresDeduplication, PostgresExactlyOnce, PostgresRetention):
    """One consumer in one group on one channel. Implements Subscription, DelayedRetry,
    RenewsLeases, SettlesOnReceipt, Deduplicates (:mod:`toolkit.channels.postgres.dedup`)
    and HandlesInTransaction (:mod:`toolkit.channels.postgres.exactly_once`); deletes
    settled messages beyond the kept history (:mod:`toolkit.channels.postgres.retention`)."""

    def __init__(
        self,
        transport: PostgresTransport,
        channel: str,
        group: str,
        consumer: str,
        channel_id: int,
        group_id: int,
    ) -> None:
        self._transport = transport
        self._pool = transport.pool
        self.channel = channel
        self.group = group
        self.consumer = consumer
        self.channel_id = channel_id
        self.group_id = group_id
        self.visibility_timeout = transport.visibility_timeout
        self._max_bytes = transport.max_message_bytes
        self.history = transport.history
        self._lock = (lock_namespace(transport.schema), channel_id)
        self._dead_on_receipt = 0
        self._skipped_on_receipt = 0
        s = transport._s
        self._s = s
        # The claimed rows are updated by their ctid (a TID scan) and the group's
        # condition is typed: plans that stay right however stale the statistics
        # (a plan made for an empty, never analysed table must not scan the backlog).
        # Priorities: the bands 9 to 1, each a range of the partial index
        # deliveries_urgent (nine probes, nothing to read when nobody sends
        # priorities), then priority 0 on deliveries_due; the Append stops at n rows.
        due = "available_at <= now() ORDER BY available_at, entry LIMIT %(n)s::int4"
        self._claim = (
            "WITH c AS (SELECT ctid FROM ("
            f"SELECT x.ctid FROM generate_series({MAX_PRIORITY}, 1, -1) AS p(p) "
            f"CROSS JOIN LATERAL (SELECT ctid FROM {s}.deliveries "
            "WHERE group_id = %(g)s::int4 AND priority > 0 AND priority = p.p "
            f"AND {due} FOR UPDATE SKIP LOCKED) x "
            f"UNION ALL SELECT y.ctid FROM (SELECT ctid FROM {s}.deliveries "
            f"WHERE group_id = %(g)s::int4 AND priority = 0 AND {due} "
            "FOR UPDATE SKIP LOCKED) y) z LIMIT %(n)s::int4), "
            f"u AS (UPDATE {s}.deliveries d "
            "SET available_at = now() + %(vt)s::float8 * interval '1 second', "
            "deliveries = d.deliveries + 1, consumer = %(c)s::text "
            "WHERE d.ctid = ANY(ARRAY(SELECT ctid FROM c)) AND d.group_id = %(g)s::int4 "
            "RETURNING d.id, d.entry, d.deliveries, d.priority) "
            f"SELECT u.id, u.deliveries, m.id IS NULL, {_M_COLUMNS} FROM u "
            f"LEFT JOIN {s}.messages m ON m.channel_id = %(ch)s::int4 AND m.id = u.entry "
            "ORDER BY u.priority DESC, u.entry"
        ).encode()
        self._claim_params: dict[str, Any] = {
            "g": group_id,
            "ch": channel_id,
            "vt": self.visibility_timeout,
            "c": consumer,
            "n": 0,
        }
        self._cut_query, self._look_query = trim_queries(s)
        self._next_due = (
            f"SELECT extract(epoch FROM min(available_at) - now()) FROM {s}.deliveries "
            "WHERE group_id = %s"
        ).encode()
        # By the delivery's own id alone (the primary key): a condition on the group
        # would tempt the planner, misled by stale statistics, to scan the group's rows.
        self._ack = f"DELETE FROM {s}.deliveries WHERE id = ANY(%s::int8[])".encode()
        # The delivery rows go, the dead letters come from the messages: one statement.
        self._dead_letter = (
            "WITH b AS (SELECT * FROM unnest(%(e)s::int8[], %(r)s::text[], %(d)s::jsonb[]) "
            "AS b(id, reason, details)), "
            f"d AS (DELETE FROM {s}.deliveries WHERE id = ANY(%(e)s::int8[]) "
            "RETURNING id, entry) "
            f"INSERT INTO {s}.dead_letters (channel_id, group_name, reason, details, entry, "
            f"{', '.join(COLUMNS)}) "
            f"SELECT %(ch)s, %(group)s, b.reason, b.details, m.id, {_M_COLUMNS} "
            "FROM b JOIN d ON d.id = b.id "
            f"JOIN {s}.messages m ON m.channel_id = %(ch)s::int4 AND m.id = d.entry "
            "WHERE b.reason IS NOT NULL ORDER BY d.entry"
        ).encode()

    # -- receiving ---------------------------------------------------------------------

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        transport = self._transport
        deadline = time.monotonic() + timeout
        while True:
            waker = transport.waker(self.channel_id)
            found, claimed = await self._take(max_count)
            if found:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if claimed:
                continue  # all dead-lettered or skipped: look again at once
            poll = (
                transport.poll_interval
                if transport.listening
                else min(transport.poll_interval, 0.2)
            )
            wait = min(remaining, poll)
            due = await self._seconds_to_next_due()
            if due is not None:
                wait = min(wait, max(due, 0.001))
            if not waker.done():
                await asyncio.wait((waker,), timeout=wait)

    async def _take(self, max_count: int) -> tuple[list[Delivery], bool]:
        if self._claimed_since_trim >= TRIM_EVERY:
            self._trim_soon()
        params = self._claim_params
        params["n"] = max_count
        async with self._pool.connection(f"receiving on {self.channel!r}") as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(self._claim, params)
            rows = await cur.fetchall()
        if not rows:
            return [], False
        self._claimed_since_trim += len(rows)
        out: list[Delivery] = []
        bad: list[tuple[int, str | None, int]] = []
        channel, max_bytes = self.channel, self._max_bytes
        for row in rows:
            entry, count, gone = row[0], row[1], row[2]
            if gone:
                bad.append((entry, None, count))
                continue
            got = read_row(row[3:], channel, max_bytes, entry, count)
            if isinstance(got, str):
                bad.append((entry, got, count))
            else:
                out.append(got)
        if bad:
            try:
                await self._settle_unreadable(bad)
            except Exception as exc:
                # Hand out what was read; the bad rows stay leased and come back.
                log.warning(
                    "could not dead-letter %d unreadable rows on %s yet: %s",
                    len(bad),
                    self.channel,
                    exc,
                )
        return out, True

    async def _settle_unreadable(self, bad: list[tuple[int, str | None, int]]) -> None:
        for entry, reason, _ in bad:
            if reason is not None:
                log.warning("dead-lettered row %s on %s: %s", entry, self.channel, reason)
        inserted = await self._dead_letters(
            [b[0] for b in bad],
            [b[1] for b in bad],
            [self._details(b[0], {}, b[2]) if b[1] is not None else None for b in bad],
        )
        self._dead_on_receipt += inserted
        self._skipped_on_receipt += len(bad) - inserted

    async def _dead_letters(
        self, entries: list[int], reasons: list[str | None], details: list[str | None]
    ) -> int:
        async with self._pool.connection(f"dead-lettering on {self.channel!r}") as conn:
            cur = await conn.execute(
                self._dead_letter,
                {
                    "e": entries,
                    "r": reasons,
                    "d": details,
                    "g": self.group_id,
                    "ch": self.channel_id,
                    "group": self.group,
                },
            )
            return max(cur.rowcount, 0)

    async def _seconds_to_next_due(self) -> float | None:
        async with self._pool.connection(f"receiving on {self.channel!r}") as conn:
            cur = await conn.execute(self._next_due, (self.group_id,))
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        return float(row[0])

    def settled_on_receipt(self) -> tuple[int, int]:
        """Rows ``receive`` dead-lettered and skipped by itself since the last call."""
        counts = self._dead_on_receipt, self._skipped_on_receipt
        self._dead_on_receipt = self._skipped_on_receipt = 0
        return counts

    def _details(self, entry: int, details: Mapping[str, str], attempts: int) -> str:
        fields = {
            "channel": self.channel,
            "consumer": self.consumer,
            "delivery_id": str(entry),
            "at": str(int(time.time() * 1000)),
            "attempts": str(attempts),
        }
        fields.update(details)
        return encode_details(fields)

    # -- settling ----------------------------------------------------------------------

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        entries = [d.delivery_id for d in deliveries]
        async with self._pool.connection(f"acknowledging on {self.channel!r}") as conn:
            await conn.execute(self._ack, (entries,))

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        details = dict(details or {})
        attempts = int(details.pop("attempts", delivery.delivery_count))
        entry = delivery.delivery_id
        text = self._details(entry, details, attempts)
        if await self._dead_letters([entry], [reason], [text]):
            return
        # Settled meanwhile by another consumer (its lease had run out), or the
        # message row is gone (trimmed): keep what was read of it.
        row = row_of_envelope(delivery.envelope)
        s = self._s
        async with self._pool.connection(f"dead-lettering on {self.channel!r}") as conn:
            await conn.execute(
                f"INSERT INTO {s}.dead_letters (channel_id, group_name, reason, details, entry, "
                f"{', '.join(COLUMNS)}) VALUES (%s, %s, %s, %s::jsonb, %s, "
                f"{', '.join(['%s'] * len(COLUMNS))})",
                (self.channel_id, self.group, reason, text, None, *row),
            )

    async def renew(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        if not deliveries:
            return []
        s = self._s
        async with self._pool.connection(f"renewing leases on {self.channel!r}") as conn:
            cur = await conn.execute(
                f"UPDATE {s}.deliveries SET available_at = now() + %s * interval '1 second' "
                "WHERE id = ANY(%s::int8[]) AND consumer = %s RETURNING id, deliveries",
                (self.visibility_timeout, [d.delivery_id for d in deliveries], self.consumer),
            )
            kept = {(row[0], row[1]) for row in await cur.fetchall()}
        return [d for d in deliveries if (d.delivery_id, d.delivery_count) not in kept]

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        s = self._s
        async with self._pool.connection(f"scheduling a retry on {self.channel!r}") as conn:
            await conn.execute(
                f"UPDATE {s}.deliveries SET available_at = now() + %s * interval '1 second', "
                "consumer = NULL WHERE id = %s::int8 AND deliveries = %s::int4",
                (max(delay, 0.0), delivery.delivery_id, delivery.delivery_count),
            )

    async def retries_waiting(self) -> int:
        s = self._s
        async with self._pool.connection(f"counting retries on {self.channel!r}") as conn:
            cur = await conn.execute(
                f"SELECT count(*) FROM {s}.deliveries WHERE group_id = %s AND consumer IS NULL "
                "AND deliveries > 0 AND available_at > now()",
                (self.group_id,),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Hand back at once what this consumer holds unsettled (its lease would run out)."""
        await self._stop_trimming()
        s = self._s
        try:
            async with self._pool.connection(f"closing on {self.channel!r}") as conn:
                await conn.execute(
                    f"UPDATE {s}.deliveries SET available_at = now(), consumer = NULL "
                    "WHERE group_id = %s AND consumer = %s AND available_at > now()",
                    (self.group_id, self.consumer),
                )
        except Exception as exc:
            log.debug("could not hand back leases on %s: %s", self.channel, exc)
