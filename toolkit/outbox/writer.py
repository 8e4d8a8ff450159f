"""Writing to the outbox: a transport that inserts into the caller's own transaction.

:class:`Outbox` (psycopg 3 ``AsyncConnection``) implements ``Transport.send``;
:class:`SyncOutbox` (psycopg 3 ``Connection`` or ``sqlite3.Connection``)
implements ``SyncTransport.send_sync``. Both insert each envelope's wire form
into the outbox table **on the connection they were given**, so the rows
commit or roll back with the caller's own writes; a relay
(:class:`~toolkit.outbox.Relay`) then moves committed rows to their channels.
The generated publishers take them as they take any transport::

    async with conn.transaction():
        await conn.execute("UPDATE orders SET state = 'paid' WHERE id = %s", (order_id,))
        await OrderServicePublisher(outbox_for(conn, key=order_id)).publish_order_paid(...)

The table is created on first use (:func:`install_outbox` ahead of time).
Neither class commits, rolls back or closes the connection: it is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, overload

from toolkit.envelope import Envelope
from toolkit.outbox.table import (
    INSTALL_LOCK,
    encode_rows,
    postgres_ddl,
    sqlite_ddl,
    sqlite_table,
)
from toolkit.pipe_settings import DEFAULT_PREFIX

if TYPE_CHECKING:
    import sqlite3

    import psycopg

    from toolkit.channels.base import Subscription

__all__ = ["Outbox", "SyncOutbox", "install_outbox", "outbox_for"]

#: (host, port, database, schema) of PostgreSQL outbox tables known to exist
_INSTALLED: set[tuple[str, int, str, str]] = set()

_INSERT: Final = (
    "INSERT INTO {table} (channel, key, message_id, routing_key, fields) "
    "VALUES ({p}, {p}, {p}, {p}, {p})"
)
_EXISTS: Final = (
    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = 'outbox'"
)


def _where(conn: Any, schema: str) -> tuple[str, int, str, str]:
    info = conn.info
    return (str(info.host), int(info.port), str(info.dbname), schema)


class Outbox:
    """A transport that writes into the outbox on ``conn``, in its current transaction.

    ``key`` names the partition whose order the relay keeps (an aggregate's
    id, say); without it, a channel's messages keep their order among
    themselves. ``prefix`` is the schema of the table (``tk``). A transport
    for publishing only: ``subscribe`` is refused (consume from the pipe).
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        key: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.conn = conn
        self.key = key or ""
        self.schema = prefix
        self._insert = _INSERT.format(table=f'"{prefix}".outbox', p="%s")

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Insert the envelopes' rows in order; they commit with the caller's transaction."""
        rows = encode_rows(channel, self.key, envelopes)
        if not rows:
            return
        where = _where(self.conn, self.schema)
        if where not in _INSTALLED:
            await _install_async(self.conn, self.schema)
        try:
            async with self.conn.cursor() as cur:
                if len(rows) == 1:
                    await cur.execute(self._insert, rows[0])
                else:
                    await cur.executemany(self._insert, rows)
        except Exception as exc:
            _forget_if_missing(where, exc)
            raise

    async def subscribe(self, channel: str, group: str, consumer: str) -> Subscription:
        raise TypeError(
            f"an outbox only publishes: consume {channel!r} from the pipe that carries it"
        )

    async def close(self) -> None:
        """Nothing to close: the connection is the caller's."""


class SyncOutbox:
    """:class:`Outbox` for synchronous code: a psycopg 3 ``Connection`` or ``sqlite3.Connection``.

    SQLite: the table is ``<prefix>_outbox``; with Python's default
    ``isolation_level`` the insert opens a transaction that the caller commits.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any] | sqlite3.Connection,
        *,
        key: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.conn = conn
        self.key = key or ""
        self.schema = prefix
        self.sqlite = type(conn).__module__.startswith("sqlite3")
        if self.sqlite:
            self._insert = _INSERT.format(table=sqlite_table(prefix), p="?")
        else:
            self._insert = _INSERT.format(table=f'"{prefix}".outbox', p="%s")
        self._ready = False

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Insert the envelopes' rows in order; they commit with the caller's transaction."""
        rows = encode_rows(channel, self.key, envelopes)
        if not rows:
            return
        if self.sqlite:
            conn: Any = self.conn
            if not self._ready:
                conn.execute(sqlite_ddl(self.schema))
                self._ready = True
            conn.executemany(self._insert, rows)
            return
        pg: psycopg.Connection[Any] = self.conn  # type: ignore[assignment]
        where = _where(pg, self.schema)
        if where not in _INSTALLED:
            _install_sync(pg, self.schema)
        try:
            with pg.cursor() as cur:
                cur.executemany(self._insert, rows)
        except Exception as exc:
            _forget_if_missing(where, exc)
            raise


def _forget_if_missing(where: tuple[str, int, str, str], exc: Exception) -> None:
    # The table was created in a transaction that rolled back afterwards (first use):
    # the next send creates it again.
    if type(exc).__name__ == "UndefinedTable":
        _INSTALLED.discard(where)


async def _install_async(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    cur = await conn.execute(_EXISTS, (schema,))
    if await cur.fetchone() is None:
        # In the caller's transaction (DDL is transactional in PostgreSQL); the lock keeps
        # two first users from creating it at once, and is held to their commit.
        await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (INSTALL_LOCK,))
        await conn.execute(postgres_ddl(schema).encode())
        return  # not remembered: it exists only once the caller commits
    _INSTALLED.add(_where(conn, schema))


def _install_sync(conn: psycopg.Connection[Any], schema: str) -> None:
    cur = conn.execute(_EXISTS, (schema,))
    if cur.fetchone() is None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (INSTALL_LOCK,))
        conn.execute(postgres_ddl(schema).encode())
        return
    _INSTALLED.add(_where(conn, schema))


@overload
def outbox_for(
    conn: psycopg.AsyncConnection[Any], *, key: str | None = None, prefix: str = DEFAULT_PREFIX
) -> Outbox: ...


@overload
def outbox_for(
    conn: psycopg.Connection[Any] | sqlite3.Connection,
    *,
    key: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> SyncOutbox: ...


def outbox_for(conn: Any, *, key: str | None = None, prefix: str = DEFAULT_PREFIX) -> Any:
    """The outbox transport of ``conn``: :class:`Outbox` for a psycopg ``AsyncConnection``,
    :class:`SyncOutbox` for a psycopg ``Connection`` or a ``sqlite3.Connection``."""
    module = type(conn).__module__
    if module.startswith("psycopg"):
        import psycopg

        if isinstance(conn, psycopg.AsyncConnection):
            return Outbox(conn, key=key, prefix=prefix)
        if isinstance(conn, psycopg.Connection):
            return SyncOutbox(conn, key=key, prefix=prefix)
    elif module.startswith("sqlite3"):
        return SyncOutbox(conn, key=key, prefix=prefix)
    raise TypeError(
        f"an outbox writes on a psycopg 3 connection (async or not) or a sqlite3 connection, "
        f"not a {type(conn).__name__}"
    )


async def install_outbox(url: str, *, prefix: str = DEFAULT_PREFIX) -> bool:
    """Create the outbox table at ``url`` (``postgresql://…`` or ``sqlite:///path``) if it
    is missing; False when it was there. Idempotent; senders and relays also do it."""
    from toolkit.outbox.store import open_store

    store = open_store(url, prefix=prefix)
    try:
        return await store.install()
    finally:
        await store.close()
