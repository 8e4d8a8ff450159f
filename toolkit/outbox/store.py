"""The relay's side of the outbox table: claim a batch in order, delete what was sent.

A batch is one database transaction: claim rows, send them (the relay), delete
those sent, commit. A relay that dies anywhere in between leaves its rows in
the table (the transaction never commits) and they are sent again: at least
once, duplicates only from the batch in flight.

PostgreSQL (several relays at once): a relay try-locks, once each, the
(channel, key) partitions of the oldest rows (``pg_try_advisory_xact_lock``,
held to the end of its transaction), then claims the rows of the partitions
it won in ``id`` order with ``FOR UPDATE SKIP LOCKED``. Another relay skips a
partition that is taken, whole, so it can never send a later row of a
partition before an earlier one has been sent and deleted; when it takes the
partition over, the rows deleted meanwhile are skipped by ``FOR UPDATE`` (a
deleted row is not returned), so nothing is sent twice in the normal case.
Each lock is asked once per claim: asked per row, a lock freed halfway
through the scan would let the later rows of a partition go without the
earlier ones it had skipped.

SQLite (one writer at a time anyway): ``BEGIN IMMEDIATE`` takes the database's
write lock for the batch; a second relay waits for it, then sees what is left.
The calls run in a worker thread so that waiting never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from toolkit.channels.base import TransportError
from toolkit.outbox.table import (
    INSTALL_LOCK,
    outbox_location,
    partition_lock_namespace,
    postgres_ddl,
    sqlite_ddl,
    sqlite_table,
)
from toolkit.pipe_settings import DEFAULT_PREFIX

if TYPE_CHECKING:
    import sqlite3

    from toolkit.channels.postgres.connection import Connection

__all__ = ["Batch", "OutboxUnavailable", "Store", "open_store"]

#: a claimed row: id, channel, wire form
Claimed = tuple[int, str, bytes]


class OutboxUnavailable(TransportError):
    """The outbox's database cannot be reached or is busy; the relay backs off and retries."""


class Batch:
    """Rows claimed in ``id`` order; the relay puts the ids it sent in ``sent``."""

    __slots__ = ("rows", "sent")

    def __init__(self, rows: Sequence[Claimed]) -> None:
        self.rows = rows
        self.sent: list[int] = []


class Store(Protocol):
    """An outbox table as the relay sees it."""

    where: str

    async def check(self) -> None:
        """Raise :class:`~toolkit.TransportError` (a clear message) unless the database answers."""
        ...

    async def install(self) -> bool: ...

    def batch(self, size: int) -> contextlib.AbstractAsyncContextManager[Batch]:
        """Claim up to ``size`` rows; on a normal exit delete ``sent`` and commit, on an
        exception roll back (every row stays)."""
        ...

    async def pending(self) -> int: ...

    async def close(self) -> None: ...


def open_store(url: str, *, prefix: str = DEFAULT_PREFIX) -> Store:
    """The store of an outbox URL; raises :class:`~toolkit.outbox.table.OutboxUrlError`."""
    kind, where = outbox_location(url)
    if kind == "sqlite":
        return SqliteStore(where, prefix)
    return PostgresStore(where, prefix)


class PostgresStore:
    def __init__(self, url: str, prefix: str) -> None:
        from toolkit.pipe_settings import redact

        self.url = url
        self.where = redact(url)
        self.schema = prefix
        s = f'"{prefix}".outbox'
        ns = partition_lock_namespace(prefix)
        # The partitions of the oldest rows, each try-locked once (MATERIALIZED: a lock's
        # answer must not change halfway through the scan), then their rows in order.
        self._claim = (
            f"WITH mine AS MATERIALIZED (SELECT channel, key FROM "
            f"(SELECT DISTINCT channel, key FROM (SELECT channel, key FROM {s} "
            "ORDER BY id LIMIT %(n)s) oldest) p "
            f"WHERE pg_try_advisory_xact_lock({ns}, hashtext(channel || chr(31) || key))) "
            f"SELECT id, channel, fields FROM {s} "
            "WHERE (channel, key) IN (SELECT channel, key FROM mine) "
            "ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED"
        )
        self._delete = f"DELETE FROM {s} WHERE id = ANY(%s::bigint[])"
        self._count = f"SELECT count(*) FROM {s}"
        self._conn: Connection | None = None
        self._installed = False

    async def _connection(self, what: str) -> Connection:
        from toolkit.channels.postgres.connection import connect

        if self._conn is None or self._conn.closed:
            self._conn = await connect(self.url)
        if not self._installed:
            await self._install(self._conn, what)
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def _error(self, what: str, exc: BaseException) -> BaseException:
        from toolkit.channels.postgres.errors import PostgresUnavailable, is_transient, unavailable

        if isinstance(exc, PostgresUnavailable) or not is_transient(exc):
            return exc
        return unavailable(what, exc)

    async def check(self) -> None:
        from toolkit.channels.postgres.connection import connect

        conn = await connect(self.url)  # raises PostgresUnavailable: "cannot reach ..."
        await conn.close()

    async def _install(self, conn: Connection, what: str) -> bool:
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT to_regclass(%s) IS NULL", (f'"{self.schema}".outbox',)
                )
                row = await cur.fetchone()
                created = bool(row and row[0])
                if created:
                    await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (INSTALL_LOCK,))
                    await conn.execute(postgres_ddl(self.schema).encode())
        except Exception as exc:
            await self._drop()
            raise self._error(what, exc) from exc
        self._installed = True
        return created

    async def install(self) -> bool:
        from toolkit.channels.postgres.connection import connect

        conn = await connect(self.url)
        try:
            return await self._install(conn, "creating the outbox table")
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def batch(self, size: int) -> AsyncIterator[Batch]:
        conn = await self._connection("claiming outbox rows")
        try:
            async with conn.transaction():
                cur = await conn.execute(self._claim, {"n": size})
                batch = Batch(await cur.fetchall())
                yield batch
                if batch.sent:
                    await conn.execute(self._delete, (batch.sent,))
        except BaseException as exc:
            await self._drop()  # a connection cut mid-transaction is not reused
            error = self._error("relaying outbox rows", exc)
            if error is exc:
                raise
            raise error from exc

    async def pending(self) -> int:
        conn = await self._connection("counting outbox rows")
        try:
            cur = await conn.execute(self._count)
            row = await cur.fetchone()
        except Exception as exc:
            await self._drop()
            raise self._error("counting outbox rows", exc) from exc
        return int(row[0]) if row else 0

    async def close(self) -> None:
        await self._drop()


class SqliteStore:
    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        self.where = f"sqlite:///{path}"
        self.prefix = prefix
        t = sqlite_table(prefix)
        self._claim = f"SELECT id, channel, fields FROM {t} ORDER BY id LIMIT ?"
        self._delete = f"DELETE FROM {t} WHERE id = ?"
        self._count = f"SELECT count(*) FROM {t}"
        self._conn: sqlite3.Connection | None = None
        self._ready = False

    def _connection(self) -> sqlite3.Connection:
        import sqlite3

        if self._conn is None:
            # isolation_level=None: transactions are begun and ended here, explicitly.
            self._conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        return self._conn

    def _table(self) -> sqlite3.Connection:
        conn = self._connection()
        if not self._ready:
            conn.execute(sqlite_ddl(self.prefix))
            self._ready = True
        return conn

    async def _call(self, what: str, function: Any, *args: Any) -> Any:
        import sqlite3

        try:
            return await asyncio.to_thread(function, *args)
        except sqlite3.OperationalError as exc:  # locked past the timeout, disk I/O, ...
            raise OutboxUnavailable(f"SQLite outbox {self.path}: {what}: {exc}") from exc

    async def check(self) -> None:
        if not os.path.isfile(self.path):
            raise OutboxUnavailable(f"no SQLite database at {self.path}")
        await self._call("opening", self._connection)

    async def install(self) -> bool:
        def create() -> bool:
            conn = self._connection()
            name = sqlite_table(self.prefix)[1:-1].replace('""', '"')
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            self._table()
            return found is None

        created: bool = await self._call("creating the outbox table", create)
        return created

    def _claim_rows(self, size: int) -> list[Claimed]:
        conn = self._table()
        conn.execute("BEGIN IMMEDIATE")
        try:
            return conn.execute(self._claim, (size,)).fetchall()
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _finish(self, sent: list[int]) -> None:
        conn = self._connection()
        try:
            conn.executemany(self._delete, [(i,) for i in sent])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @contextlib.asynccontextmanager
    async def batch(self, size: int) -> AsyncIterator[Batch]:
        batch = Batch(await self._call("claiming outbox rows", self._claim_rows, size))
        try:
            yield batch
        except BaseException:
            self._rollback()  # quick: the write lock is ours, nothing to wait for
            raise
        await self._call("deleting relayed rows", self._finish, batch.sent)

    async def pending(self) -> int:
        def count() -> int:
            row = self._table().execute(self._count).fetchone()
            return int(row[0]) if row else 0

        found: int = await self._call("counting outbox rows", count)
        return found

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
