"""Retention on PostgreSQL: settled messages beyond a channel's kept history are deleted.

A message row may go once no group has it left to settle (no ``deliveries``
row names it: handled, dead-lettered, or its scheduled time cancelled) and it
is not among the latest ``history`` messages of its channel (10,000 by
default, as in memory; ``?history=N`` in the pipe URL, ``history=all`` keeps
everything). Pending, leased, retrying and scheduled messages all have
delivery rows, so they stay however old; dead letters are copies in their own
table and stay too. What is kept is what a group created later starts from.

The consumers of the channel do it, piggy-backed on their claims: every
:data:`TRIM_EVERY` rows a consumer claims, it starts a look in the background
(its claims go on meanwhile, and ``close`` waits for it). A look reads the
next :data:`TRIM_SCAN` messages of the channel after where its previous look
stopped (from the oldest again once it reaches the cut) and deletes those no
delivery row names, in one statement. Every step is on an index whatever the
statistics say:

* the cut (the newest message the history does not hold): a backward range
  of the primary key, ``history`` entries long, found again only every
  ``history`` / 2 claims so that its cost per message does not grow with the
  history (meanwhile it lags behind by what was sent since);
* the messages looked at: a forward range of the primary key, up to the cut;
* each one's delivery rows: one probe of ``deliveries_entry``;
* the deletion: by ``ctid``.

The work of a look is bounded however large the table or the backlog; a
backlog ahead of the cut is walked over a few looks, never all at once.

The look holds the channel's advisory lock shared (as senders do) and takes
its snapshot after it: a group being created (which holds it exclusively)
either gets delivery rows for the messages, which then stay, or is created
after they are gone and never sees them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from toolkit.channels.memory.transport import DEFAULT_HISTORY
from toolkit.pipe_settings import BindingError, redact

if TYPE_CHECKING:
    from toolkit.channels.postgres.connection import Pool

__all__ = [
    "DEFAULT_HISTORY",
    "TRIM_EVERY",
    "TRIM_SCAN",
    "PostgresRetention",
    "parse_history",
    "trim_queries",
]

log = logging.getLogger("toolkit.postgres")

#: rows a consumer claims between two looks for messages to delete
TRIM_EVERY: Final = 1000
#: messages one look reads at most: more than a consumer claims between two, so the
#: looks keep up with what is settled and walk over a backlog in a few rounds
TRIM_SCAN: Final = 5 * TRIM_EVERY


def parse_history(url: str, text: str) -> int | None:
    """The URL's ``history`` option: a whole number of messages, or ``all`` (None)."""
    if text.lower() == "all":
        return None
    if not text.isdigit():
        raise BindingError(
            f"pipe URL {redact(url)!r}: history must be a whole number of messages "
            f"or 'all', not {text!r}"
        )
    return int(text)


def trim_queries(s: str) -> tuple[bytes, bytes]:
    """(the cut: channel, history -> the newest message the history does not hold;
    a look: channel ``ch``, after id ``after``, up to the cut ``cut``, ``scan`` messages
    at most -> messages looked at, the last one's id, messages deleted)."""
    # A backward range of the primary key, ``history`` entries long (no row when the
    # channel holds no more than them: nothing to delete).
    cut = (
        f"SELECT id FROM {s}.messages WHERE channel_id = %s::int4 "
        "ORDER BY id DESC OFFSET %s::int8 LIMIT 1"
    )
    look = (
        f"WITH w AS (SELECT m.id, m.ctid FROM {s}.messages m "
        "WHERE m.channel_id = %(ch)s::int4 AND m.id > %(after)s::int8 "
        "AND m.id <= %(cut)s::int8 ORDER BY m.id LIMIT %(scan)s::int8), "
        f"gone AS (DELETE FROM {s}.messages x WHERE x.ctid = ANY(ARRAY("
        "SELECT w.ctid FROM w WHERE NOT EXISTS ("
        f"SELECT 1 FROM {s}.deliveries d WHERE d.entry = w.id))) "
        "AND x.channel_id = %(ch)s::int4 RETURNING 1) "
        "SELECT (SELECT count(*) FROM w), (SELECT max(id) FROM w), (SELECT count(*) FROM gone)"
    )
    return cut.encode(), look.encode()


class PostgresRetention:
    """Deletes settled messages beyond the kept history; the part of a PostgreSQL
    subscription that does it (``receive`` calls :meth:`_trim_soon`)."""

    #: the channel's kept history (None: keep everything), set by the subscription
    history: int | None
    #: the id after which this consumer's next look starts (0: the oldest)
    _trim_after = 0
    #: the newest message beyond the history (None: none), as last found, and the looks
    #: left before it is found again
    _cut: int | None = None
    _looks_to_cut = 0
    _claimed_since_trim = 0
    #: the look in flight
    _look: asyncio.Task[None] | None = None

    if TYPE_CHECKING:
        _pool: Pool
        _s: str
        _lock: tuple[int, int]
        _cut_query: bytes
        _look_query: bytes
        channel: str
        channel_id: int

    def _trim_soon(self) -> None:
        """Start a look in the background (``receive`` calls this every :data:`TRIM_EVERY`
        rows claimed): claims go on meanwhile. At most one at a time per consumer."""
        self._claimed_since_trim = 0
        if self.history is None or (self._look is not None and not self._look.done()):
            return
        self._look = asyncio.ensure_future(self._trim_logged())

    async def _trim_logged(self) -> None:
        try:
            await self.trim()
        except Exception as exc:  # the next look does its work
            log.warning("could not delete settled messages of %s: %s", self.channel, exc)

    async def _stop_trimming(self) -> None:
        """Wait for the look in flight, if any (a consumer closing)."""
        if self._look is not None:
            # wait(), not await: a look cancelled (the loop shutting down) must not stop
            # the consumer from handing back its leases.
            await asyncio.wait((self._look,))
            self._look = None

    async def trim(self, scan: int = TRIM_SCAN) -> int:
        """One look at up to ``scan`` messages: delete those every group has settled
        beyond the kept history; how many were deleted."""
        if self.history is None:
            return 0
        async with self._pool.connection(f"deleting settled messages of {self.channel!r}") as conn:
            if self._looks_to_cut <= 0:
                # A range of ``history`` entries: found again every history / 2 claims
                # (per consumer), so its cost per message stays the same however long the
                # history; meanwhile, the cut lags behind by what was sent since.
                cur = await conn.execute(self._cut_query, (self.channel_id, self.history))
                found = await cur.fetchone()
                self._cut = None if found is None else int(found[0])
                self._looks_to_cut = max(1, self.history // (2 * TRIM_EVERY))
            self._looks_to_cut -= 1
            if self._cut is None:
                return 0
            params = {
                "ch": self.channel_id,
                "after": self._trim_after,
                "cut": self._cut,
                "scan": scan,
            }
            async with conn.transaction():
                # Shared, as senders hold it: group creation (exclusive) waits, and the
                # look (a statement of its own, so a snapshot taken after the lock) sees
                # the rows it made.
                await conn.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", self._lock)
                cur = await conn.execute(self._look_query, params)
                row = await cur.fetchone()
        assert row is not None
        looked, last, deleted = int(row[0]), row[1], int(row[2])
        # A full look goes on from where it stopped; a short one reached the kept
        # history, and the next starts again from the oldest.
        self._trim_after = int(last) if looked >= scan and last is not None else 0
        return deleted
