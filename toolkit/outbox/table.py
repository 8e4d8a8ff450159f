"""The outbox table: where it lives, how a message is stored in it, and its DDL.

One row per message per channel: ``id`` (the order), ``channel``, ``key`` (the
partition whose order the relay keeps: the caller's key, or ``''`` for the
channel's own order), ``message_id`` and ``routing_key`` (for reading it with
``psql``/``sqlite3``), and ``fields``: the message's wire form
(``docs/wire-format.md``, ``Envelope.to_fields`` with every value as bytes)
as a msgpack map. Reading it back goes through ``Envelope.from_fields``, so an
outbox row reads like any pipe's entry.

PostgreSQL: table ``outbox`` in the schema named after the prefix (``tk``: the
PostgreSQL pipe's schema when both share a database). SQLite: table
``<prefix>_outbox``. Neither module imports its driver here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

import msgspec

from toolkit.channels.memory.wire import wire_fields
from toolkit.channels.postgres.schema import lock_namespace, quote_ident
from toolkit.envelope import Envelope
from toolkit.pipe_settings import redact

__all__ = [
    "OutboxUrlError",
    "Row",
    "decode",
    "encode_rows",
    "outbox_location",
    "postgres_ddl",
    "sqlite_ddl",
    "sqlite_table",
]

#: one row to insert: channel, key, message id, routing key, wire form
Row = tuple[str, str, str, str, bytes]

_ENCODE: Final = msgspec.msgpack.Encoder().encode
_DECODE: Final = msgspec.msgpack.Decoder(dict[str, bytes]).decode
#: the advisory lock (first half) that serialises creating the table in one database
INSTALL_LOCK: Final = 0x746B6F62  # "tkob"


class OutboxUrlError(ValueError):
    """An outbox URL that names no outbox this toolkit can read (the message says why)."""


def encode_rows(channel: str, key: str, envelopes: Sequence[Envelope]) -> list[Row]:
    """The rows of ``envelopes``; raises where every pipe's ``send`` raises (a header that
    is not a string, a string that is not UTF-8), before anything is written."""
    return [
        (channel, key, e.headers.message_id, e.headers.routing_key, _ENCODE(wire_fields(e)))
        for e in envelopes
    ]


def decode(fields: bytes) -> Envelope:
    """The envelope of a row's ``fields``; raises :class:`~toolkit.WireError` (or a msgpack
    error) for a row that is not one."""
    return Envelope.from_fields(_DECODE(fields))


def postgres_ddl(schema: str) -> str:
    s = quote_ident(schema)
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel text NOT NULL,
    key text NOT NULL DEFAULT '',
    message_id text NOT NULL,
    routing_key text NOT NULL,
    fields bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def partition_lock_namespace(schema: str) -> int:
    """The first half of the relay's advisory lock per (channel, key) partition."""
    return lock_namespace(f"{schema}.outbox")


def sqlite_table(prefix: str) -> str:
    return quote_ident(f"{prefix}_outbox")


def sqlite_ddl(prefix: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {sqlite_table(prefix)} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    fields BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)"""


def outbox_location(url: str) -> tuple[str, str]:
    """("postgres", url) or ("sqlite", path) for an outbox URL.

    ``postgresql://`` and ``postgres://`` are libpq URLs; ``sqlite:///app.db`` is the
    file ``app.db`` (relative), ``sqlite:////var/app.db`` the absolute ``/var/app.db``
    (SQLAlchemy's spelling).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return "postgres", url
    if scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise OutboxUrlError(
                f"outbox URL {redact(url)!r}: a SQLite outbox is sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        return "sqlite", parts.path[1:]
    what = f"scheme {scheme}://" if scheme else "no scheme"
    raise OutboxUrlError(
        f"outbox URL {redact(url)!r} has {what}; an outbox lives in "
        "postgresql://user@host:port/database or sqlite:///path.db"
    )
