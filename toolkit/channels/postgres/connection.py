"""PostgreSQL connections from a URL: a small pool, and what an outage looks like.

``postgresql://[user[:password]@]host[:port]/database[?options]`` (libpq's
URL; ``postgres://`` too; the toolkit's own query options, :data:`TOOLKIT_OPTIONS`, are
taken out before libpq sees it). Connections are autocommit, never prepare
statements (``prepare_threshold=None``: a plan made for an empty queue table
and kept would later scan the whole table), steer the planner to the
indexes (:data:`PLANNER`), and keep TCP alive so a dead
server is noticed. A connection that failed is dropped, never reused; the
next operation opens a fresh one, so a restarted server is transparent once
it accepts connections again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from toolkit.channels.postgres.errors import PostgresUnavailable, is_transient, unavailable
from toolkit.pipe_settings import redact

__all__ = ["CONNECT_OPTIONS", "TOOLKIT_OPTIONS", "Pool", "connect", "split_options", "unreachable"]

#: libpq options of every connection (options in the URL win)
CONNECT_OPTIONS: Final[dict[str, Any]] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "application_name": "toolkit",
}
_MAX_IDLE: Final = 8
#: Every query of the pipe is an index range or a few index lookups (nested loops over at
#: most a batch). Statistics of queue tables are always stale (analysed while empty,
#: then holding a backlog, or the reverse; a group's rows are all the table, not the
#: planner's default 0.5%), and with them the planner sorts or hashes a whole backlog
#: for every claim and every acknowledgement. These keep it on the indexes.
PLANNER: Final = (
    "-c enable_bitmapscan=off -c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off"
)

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

#: query options of a PostgreSQL pipe URL that are the toolkit's, not libpq's (which
#: refuses options it does not know)
TOOLKIT_OPTIONS: Final = frozenset({"history"})


def split_options(url: str) -> tuple[str, dict[str, str]]:
    """(``url`` without the toolkit's query options: what libpq is given, those options)."""
    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    ours: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query):
        if key in TOOLKIT_OPTIONS:
            ours[key] = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), ours


def unreachable(url: str, exc: BaseException) -> PostgresUnavailable:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    error = PostgresUnavailable(
        f"cannot reach PostgreSQL at {redact(url)}: {text} (is the server running? is the URL right?)"
    )
    error.__cause__ = exc
    return error


async def connect(url: str) -> Connection:
    """A new autocommit connection; raises :class:`PostgresUnavailable` when that fails."""
    try:
        given = conninfo_to_dict(split_options(url)[0])
        options = {**CONNECT_OPTIONS, **given}
        options["options"] = f"{given.get('options', '')} {PLANNER}".strip()
        return await psycopg.AsyncConnection.connect(
            autocommit=True, prepare_threshold=None, **options
        )
    except (psycopg.Error, OSError) as exc:
        raise unreachable(url, exc) from exc


class Pool:
    """Idle connections kept for reuse; one is taken per operation and given back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: list[Connection] = []
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[Connection]:
        """A connection for one operation; an outage raises :class:`PostgresUnavailable`
        (the connection is dropped), other errors pass as they are."""
        conn = self._idle.pop() if self._idle else await connect(self.url)
        try:
            yield conn
        except BaseException as exc:
            await self._discard(conn)
            if isinstance(exc, PostgresUnavailable) or not is_transient(exc):
                raise
            raise unavailable(what, exc) from exc
        else:
            if (
                self._closed
                or conn.closed
                or conn.info.transaction_status != pq.TransactionStatus.IDLE
                or len(self._idle) >= _MAX_IDLE
            ):
                await self._discard(conn)
            else:
                self._idle.append(conn)

    @staticmethod
    async def _discard(conn: Connection) -> None:
        with contextlib.suppress(Exception):
            await conn.close()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._discard(conn)
