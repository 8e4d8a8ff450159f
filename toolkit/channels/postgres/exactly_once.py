"""Exactly-once effect on PostgreSQL: a step's handlers, records and acknowledgements in
one transaction (:class:`~toolkit.channels.base.HandlesInTransaction`).

Per step, on one connection of the pipe's pool:

* ``BEGIN``; the step's ids go into ``handled`` first (``ON CONFLICT`` takes
  over only an expired record). The unique key makes a consumer that handles
  the same message at once (a redelivery after its lease ran out, a copy)
  wait for this transaction, then see the record and skip it: two consumers
  never both commit an effect of one message. Ids that come back are handled;
  the others are duplicates.
* each handler runs after a ``SAVEPOINT``, rolled back to when it fails, is
  rejected, or returns with the transaction in error (the handler's own
  nested ``conn.transaction()`` blocks are savepoints inside it);
* one statement deletes the records of those rolled back and the delivery
  rows of the rest (the acknowledgement); ``COMMIT``.

A crash anywhere before the commit rolls everything back: the messages come
back when their leases run out, with nothing of theirs written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from psycopg import pq

from toolkit.channels.base import Delivery

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = ["PostgresExactlyOnce"]

# A savepoint per message, never released: RELEASE would cost a round trip per message,
# and the step's commit releases them all. One name: a rollback goes back to the most
# recent, the message's own. A step of RECORD_EVERY stays far below the 64
# subtransactions a backend tracks without overflowing to pg_subtrans.
_SAVEPOINT: Final = b"SAVEPOINT tk_message"
_ROLLBACK_TO: Final = b"ROLLBACK TO SAVEPOINT tk_message"


class PostgresExactlyOnce:
    """The :class:`~toolkit.channels.base.HandlesInTransaction` part of a PostgreSQL
    subscription."""

    if TYPE_CHECKING:
        _pool: Pool
        _s: str
        group_id: int
        channel: str

    async def handle_in_transaction(
        self,
        deliveries: Sequence[Delivery],
        window: float,
        handle: Callable[[Delivery, Any], Awaitable[bool]],
    ) -> tuple[list[Delivery], list[Delivery]]:
        s, group = self._s, self.group_id
        # Sorted: concurrent steps take the records' index locks in one order (no deadlock).
        ids = sorted({d.message_id for d in deliveries})
        duplicates: list[Delivery] = []
        aborted: list[Delivery] = []
        undone: list[str] = []
        acked: list[int] = []
        async with (
            self._pool.connection(f"handling in a transaction on {self.channel!r}") as conn,
            conn.transaction(),
        ):
            cur = await conn.execute(
                f"INSERT INTO {s}.handled (group_id, message_id, expires_at) "
                "SELECT %s::int4, i, now() + %s::float8 * interval '1 second' "
                "FROM unnest(%s::text[]) AS i ON CONFLICT (group_id, message_id) DO UPDATE "
                "SET expires_at = EXCLUDED.expires_at WHERE handled.expires_at <= now() "
                "RETURNING message_id",
                (group, window, ids),
            )
            fresh = {str(row[0]) for row in await cur.fetchall()}
            for delivery in deliveries:
                message_id = delivery.message_id
                if message_id not in fresh:
                    duplicates.append(delivery)
                    acked.append(delivery.delivery_id)
                    continue
                fresh.discard(message_id)  # a second copy in the step is a duplicate
                await conn.execute(_SAVEPOINT)
                kept = await handle(delivery, conn)
                if kept and conn.info.transaction_status == pq.TransactionStatus.INERROR:
                    kept = False
                    aborted.append(delivery)
                if not kept:
                    await conn.execute(_ROLLBACK_TO)
                if kept:
                    acked.append(delivery.delivery_id)
                else:
                    undone.append(message_id)
            # By the delivery ids alone (the primary key), as the plain acknowledgement.
            await conn.execute(
                f"WITH u AS (DELETE FROM {s}.handled WHERE group_id = %s::int4 "
                "AND message_id = ANY(%s::text[])) "
                f"DELETE FROM {s}.deliveries WHERE id = ANY(%s::int8[])",
                (group, undone, acked),
            )
        return duplicates, aborted
