"""The asyncio PostgreSQL transport: sending (coalesced), groups, wake-ups.

* ``send``: concurrent sends are queued and written together: one
  ``INSERT … SELECT FROM unnest(…)`` statement (one round trip, one
  transaction) for every send queued meanwhile, whatever their channels. The
  trigger on ``messages`` makes the delivery rows and the ``NOTIFY``. A batch
  holding scheduled messages uses a variant that sets ``available_at`` from
  their due time (:mod:`~toolkit.channels.postgres.schedule`).
* ``subscribe``: the group is created (``create_group``: at the start of the
  channel) and a :class:`~toolkit.channels.postgres.subscription.PostgresSubscription`
  returned.
* one listening connection per transport (``LISTEN <schema>``) wakes the
  subscriptions of the channel a notification names; it reconnects by itself,
  and subscriptions poll meanwhile (and every ``poll_interval`` anyway).
* the dead-letter store comes from
  :class:`~toolkit.channels.postgres.dead_letters.PostgresDeadLetters`, the status
  (``toolkit status``, the lag gauges) from
  :class:`~toolkit.channels.postgres.status.PostgresStatus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Final

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.postgres.connection import (
    Connection,
    Pool,
    connect,
    split_options,
    unreachable,
)
from toolkit.channels.postgres.dead_letters import PostgresDeadLetters
from toolkit.channels.postgres.errors import PostgresUnavailable, is_transient, unavailable
from toolkit.channels.postgres.retention import DEFAULT_HISTORY, parse_history
from toolkit.channels.postgres.rows import COLUMNS, Row, row_of_envelope, row_of_fields
from toolkit.channels.postgres.schedule import DUE, PostgresSchedules, drop_waiting
from toolkit.channels.postgres.schema import WIRE_COLUMN_TYPES, install, quote_ident
from toolkit.channels.postgres.status import PostgresStatus
from toolkit.channels.postgres.subscription import PostgresSubscription
from toolkit.envelope import Envelope
from toolkit.pipe_settings import DEFAULT_PREFIX

__all__ = ["PostgresTransport", "drop_schema", "install_schema"]

log = logging.getLogger("toolkit.postgres")

#: seconds between polls of an idle subscription while notifications arrive
POLL_INTERVAL: Final = 1.0
#: ... and while the listening connection is down
POLL_WITHOUT_LISTENER: Final = 0.2
_Pending = tuple[str, Sequence[Row], asyncio.Future[None]]


class PostgresTransport(PostgresDeadLetters, PostgresStatus, PostgresSchedules):
    """Channels on PostgreSQL tables (asyncio). Implements Transport, DeadLetterStore,
    ReportsStatus, Schedules and Prioritizes (a message's ``priority`` header is a column
    of its delivery rows, which claims take highest first).

    ``PostgresTransport(url)`` does no I/O; the first operation connects and
    installs the schema (``prefix``) if it is missing. ``await transport.check()``
    raises :class:`~toolkit.channels.postgres.PostgresUnavailable` with a clear
    (redacted) message when the server cannot be reached.

    ``history``: messages every group has settled are deleted, except the latest
    ``history`` of each channel (None: none is deleted); ``?history=N`` (or ``all``) in
    the URL wins (:mod:`~toolkit.channels.postgres.retention`).
    """

    prioritizes_messages = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        visibility_timeout: float = 30.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        poll_interval: float = POLL_INTERVAL,
        history: int | None = DEFAULT_HISTORY,
    ) -> None:
        self.url, options = split_options(url)
        if "history" in options:
            history = parse_history(url, options["history"])
        if history is not None and history < 0:
            raise ValueError("history must not be negative (None: keep every message)")
        self.history = history
        self.schema = prefix
        self.visibility_timeout = visibility_timeout
        self.max_message_bytes = max_message_bytes
        self.poll_interval = poll_interval
        self.pool = Pool(self.url)
        self._s = quote_ident(prefix)
        self._installed = False
        self._install_lock = asyncio.Lock()
        self._channel_ids: dict[str, int] = {}
        self._outbox: list[_Pending] = []
        self._writer: asyncio.Future[None] | None = None
        values = ", ".join(f"u{i}" for i in range(len(COLUMNS)))
        unnest = (
            "unnest("
            + ", ".join(["%s::int[]", *(f"%s::{kind}[]" for _, kind in WIRE_COLUMN_TYPES)])
            + f") WITH ORDINALITY AS u(c, {values}, o)"
        )
        self._insert = (
            f"INSERT INTO {self._s}.messages (channel_id, {', '.join(COLUMNS)}) "
            f"SELECT c, {values} FROM {unnest} ORDER BY o"
        ).encode()
        # Due no sooner than now (the server's clock), so a due time already passed
        # does not put a message before those sent earlier; one waiting with the same
        # message id is replaced.
        self._insert_scheduled = (
            f"WITH u AS (SELECT * FROM {unnest}), "
            f"x AS (SELECT c AS channel_id, u0 AS message_id FROM u WHERE u{DUE} IS NOT NULL), "
            f"{drop_waiting(self._s, 'x')} "
            f"INSERT INTO {self._s}.messages (channel_id, available_at, {', '.join(COLUMNS)}) "
            f"SELECT c, greatest(now(), to_timestamp(u{DUE}::float8 / 1000)), {values} "
            "FROM u ORDER BY o"
        ).encode()
        self._wakers: dict[int, asyncio.Future[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self.listening = False
        self._closed = False

    # -- setup ---------------------------------------------------------------------------

    async def check(self) -> None:
        """Raise :class:`~toolkit.channels.postgres.PostgresUnavailable` unless the server answers."""
        try:
            async with self.pool.connection("checking the server") as conn:
                await conn.execute("SELECT 1")
        except PostgresUnavailable as exc:
            cause = exc.__cause__
            if cause is None or str(exc).startswith("cannot reach"):
                raise
            raise unreachable(self.url, cause) from cause

    async def install(self) -> bool:
        """Create the schema if it is missing (idempotent); False when it was there already."""
        async with self._install_lock:
            async with self.pool.connection("installing the schema") as conn:
                created = await install(conn, self.schema)
            self._installed = True
            return created

    async def ready(self) -> None:
        if not self._installed:
            await self.install()

    async def channel_id(self, channel: str) -> int:
        found = self._channel_ids.get(channel)
        if found is not None:
            return found
        await self.ready()
        async with self.pool.connection(f"opening channel {channel!r}") as conn:
            cur = await conn.execute(f"SELECT {self._s}.channel_id(%s)", (channel,))
            row = await cur.fetchone()
        assert row is not None
        self._channel_ids[channel] = found = int(row[0])
        return found

    # -- Transport ----------------------------------------------------------------------

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Append in order; returns once PostgreSQL has committed them.

        Sends issued concurrently are written in one statement (one
        transaction), in the order they were issued. What the wire cannot
        carry fails this send alone, before anything is written. A connection
        lost while committing is retried once on a fresh one, so a message
        may be stored twice (delivery is at least once anyway).
        """
        if not envelopes:
            return
        rows = [row_of_envelope(e) for e in envelopes]
        await self._enqueue(channel, rows)

    async def add_raw(
        self, channel: str, fields: Mapping[str, str | bytes] | Mapping[bytes, bytes]
    ) -> None:
        """Append an entry given as raw wire fields (as another program would)."""
        await self._enqueue(channel, [row_of_fields(fields)])

    async def _enqueue(self, channel: str, rows: Sequence[Row]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, rows, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        await done

    async def _write(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._insert_batch(batch)
            except Exception as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _insert_batch(self, batch: list[_Pending]) -> None:
        ids: list[int] = []
        rows: list[Row] = []
        for channel, sent, _ in batch:
            ch = await self.channel_id(channel)
            ids.extend([ch] * len(sent))
            rows.extend(sent)
        params = [ids, *map(list, zip(*rows, strict=True))]
        insert = self._insert_scheduled if any(params[1 + DUE]) else self._insert
        for attempt in range(2):
            try:
                async with self.pool.connection("sending") as conn:
                    await conn.cursor(binary=True).execute(insert, params)
                return
            except Exception as exc:
                if attempt or not is_transient(exc):
                    raise
                await asyncio.sleep(0.05)

    async def subscribe(self, channel: str, group: str, consumer: str) -> PostgresSubscription:
        channel_id = await self.channel_id(channel)
        async with self.pool.connection(f"creating group {group!r}") as conn:
            cur = await conn.execute(f"SELECT {self._s}.create_group(%s, %s)", (channel, group))
            row = await cur.fetchone()
        assert row is not None
        self._start_listener()
        return PostgresSubscription(self, channel, group, consumer, channel_id, int(row[0]))

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        for waker in self._wakers.values():
            if not waker.done():
                waker.set_result(None)
        self._wakers.clear()
        await self.pool.close()

    # -- wake-ups ----------------------------------------------------------------------

    def waker(self, channel_id: int) -> asyncio.Future[None]:
        """A future done at the next notification for ``channel_id`` (take it before looking)."""
        waker = self._wakers.get(channel_id)
        if waker is None or waker.done():
            waker = self._wakers[channel_id] = asyncio.get_running_loop().create_future()
        return waker

    def _wake(self, channel_id: int | None) -> None:
        if channel_id is None:
            wakers = list(self._wakers.values())
            self._wakers.clear()
        else:
            one = self._wakers.pop(channel_id, None)
            wakers = [one] if one is not None else []
        for waker in wakers:
            if not waker.done():
                waker.set_result(None)

    def _start_listener(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        backoff = 0.1
        while not self._closed:
            conn: Connection | None = None
            try:
                conn = await connect(self.url)
                await conn.execute(f"LISTEN {self._s}")
                self.listening = True
                backoff = 0.1
                self._wake(None)  # what was notified while nobody listened
                async for note in conn.notifies():
                    try:
                        self._wake(int(note.payload))
                    except ValueError:
                        self._wake(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc) and not isinstance(exc, ConnectionError):
                    log.exception("the listening connection to PostgreSQL failed")
                else:
                    log.debug("listening connection lost: %s", exc)
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)


async def install_schema(url: str, *, prefix: str = DEFAULT_PREFIX) -> bool:
    """Create the pipe's schema ``prefix`` at ``url`` if missing; False when it was current.

    The entry point for a command (``toolkit`` CLI): transports also do this on first use.
    """
    transport = PostgresTransport(url, prefix=prefix)
    try:
        return await transport.install()
    finally:
        await transport.close()


async def drop_schema(url: str, *, prefix: str) -> None:
    """Drop the pipe's schema ``prefix`` and everything in it (messages, dead letters)."""
    conn = await connect(url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(prefix)} CASCADE")
    except Exception as exc:
        if is_transient(exc):
            raise unavailable("dropping the schema", exc) from exc
        raise
    finally:
        await conn.close()
