"""The tables, functions and trigger of the PostgreSQL pipe, installed idempotently.

Everything lives in one schema named after the pipe's prefix (``toolkit``
unless set), so several systems can share a database and a test can drop its
own. :func:`install` creates what is missing and is safe to run at any time,
from several processes at once; the transport runs it on first use, and
``docs/postgres.md`` describes the layout:

* ``channels``: one row per channel name (a small id the other tables use);
* ``groups``: one row per consumer group of a channel;
* ``messages``: every message sent and kept (settled ones beyond the channel's
  history are deleted: :mod:`~toolkit.channels.postgres.retention`), its wire
  fields as columns (``raw`` holds the exact fields of a hand-written entry the
  columns cannot hold), and
  ``available_at``, the time it may first be delivered (a scheduled message's
  due time, its ``deliver_at`` column: the trigger gives its delivery rows the
  same ``available_at``, so no group can claim it before then);
* ``deliveries``: one row per message per group that has not settled it yet
  (``id``: the delivery id consumers settle by; ``entry``: the message):
  ``available_at`` (not handed out before then: a delay, a retry's backoff,
  or the lease of the consumer holding it), ``deliveries`` (the count) and
  ``consumer`` (who holds it); ``deliveries_entry`` finds a message's rows, so
  that settled messages can be deleted (:mod:`~toolkit.channels.postgres.retention`);
* ``dead_letters``: rejected messages, a copy of the message's columns plus
  why, which group, and the details.

A statement trigger on ``messages`` creates the delivery rows of every group
of the channel and notifies listeners (``NOTIFY <schema>, '<channel id>'``),
so whatever inserts messages (this transport, a relay, a program in another
language) reaches every group. ``create_group`` gives a new group a delivery
row for every message the channel holds. An advisory lock per channel,
shared by senders and exclusive for group creation, keeps the two from
missing each other.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Final

from toolkit.priority import MAX_PRIORITY
from toolkit.wire import F_BODY, F_DELIVER_AT, F_PRIORITY, F_TIMESTAMP, WIRE_FIELDS

if TYPE_CHECKING:
    import psycopg

_TYPES: Final = {
    F_TIMESTAMP: "bigint",
    F_BODY: "bytea",
    F_DELIVER_AT: "bigint",
    F_PRIORITY: "smallint",
}

__all__ = ["SCHEMA_VERSION", "install", "installed", "lock_namespace", "quote_ident", "schema_sql"]

#: bumped when the layout changes; ``install`` brings older schemas up to it
SCHEMA_VERSION: Final = 6

#: (column, SQL type) of each wire field, ``deliver_at`` (scheduled messages only),
#: ``priority`` (prioritized messages only) and ``raw``, from the one list of wire
#: fields: a header added to the wire format becomes a column (added to existing tables too)
WIRE_COLUMN_TYPES: Final = tuple(
    (f'"{f}"' if f == F_TIMESTAMP else f, _TYPES.get(f, "text"))
    for f in (*WIRE_FIELDS, F_DELIVER_AT, F_PRIORITY)
) + (("raw", "bytea"),)

#: a message's priority as its delivery rows hold it: what the wire would refuse
#: (written by hand) counts as 0, and the row is dead-lettered when read
_DELIVERY_PRIORITY: Final = (
    f"CASE WHEN m.priority BETWEEN 1 AND {MAX_PRIORITY} THEN m.priority ELSE 0 END"
)

#: the advisory lock key (first half) that serialises installs in one database
_INSTALL_LOCK: Final = 0x746B6974  # "tkit"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lock_namespace(schema: str) -> int:
    """The first half of the per-channel advisory lock keys of ``schema`` (an int4)."""
    return zlib.crc32(schema.encode()) & 0x7FFFFFFF


#: a message's wire fields (``docs/wire-format.md``) and ``raw``: in ``messages`` and
#: ``dead_letters`` alike (the order of :data:`~toolkit.channels.postgres.rows.COLUMNS`)
_WIRE_COLUMNS: Final = ",\n".join(f"    {column} {kind}" for column, kind in WIRE_COLUMN_TYPES)


def schema_sql(schema: str) -> str:
    """The DDL of ``schema``: every statement idempotent (``IF NOT EXISTS``, ``OR REPLACE``)."""
    s = quote_ident(schema)
    ns = lock_namespace(schema)
    notify = "'" + schema.replace("'", "''") + "'"
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};

CREATE TABLE IF NOT EXISTS {s}.schema_version (version int NOT NULL);

CREATE TABLE IF NOT EXISTS {s}.channels (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS {s}.groups (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id int NOT NULL REFERENCES {s}.channels,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, name)
);

CREATE TABLE IF NOT EXISTS {s}.messages (
    channel_id int NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    available_at timestamptz NOT NULL DEFAULT now(),
    only_group int,
{_WIRE_COLUMNS},
    PRIMARY KEY (channel_id, id)
);

CREATE TABLE IF NOT EXISTS {s}.deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id int NOT NULL,
    entry bigint NOT NULL,
    available_at timestamptz NOT NULL,
    deliveries int NOT NULL DEFAULT 0,
    consumer text,
    priority smallint NOT NULL DEFAULT 0
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_analyze_scale_factor = 0.02);

CREATE INDEX IF NOT EXISTS deliveries_due ON {s}.deliveries (group_id, available_at, entry);

CREATE TABLE IF NOT EXISTS {s}.dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id int NOT NULL,
    group_name text NOT NULL,
    reason text NOT NULL,
    details jsonb NOT NULL DEFAULT '{{}}',
    dead_at timestamptz NOT NULL DEFAULT now(),
    entry bigint,
{_WIRE_COLUMNS}
);

CREATE INDEX IF NOT EXISTS dead_letters_channel ON {s}.dead_letters (channel_id, id);

-- Deduplication: message ids a group handled, until expires_at (toolkit.channels.postgres.dedup).
CREATE TABLE IF NOT EXISTS {s}.handled (
    group_id int NOT NULL,
    message_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (group_id, message_id)
);

CREATE INDEX IF NOT EXISTS handled_expiry ON {s}.handled (group_id, expires_at);

CREATE OR REPLACE FUNCTION {s}.channel_id(channel text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    found int;
BEGIN
    SELECT id INTO found FROM {s}.channels WHERE name = channel;
    IF found IS NULL THEN
        INSERT INTO {s}.channels (name) VALUES (channel)
            ON CONFLICT (name) DO NOTHING RETURNING id INTO found;
        IF found IS NULL THEN
            SELECT id INTO found FROM {s}.channels WHERE name = channel;
        END IF;
    END IF;
    RETURN found;
END $$;

-- Senders hold the channel's lock shared, group creation exclusive: a group
-- either sees a message in its backfill or gets its delivery row from the
-- trigger. Each statement of a plpgsql function takes a fresh snapshot, so
-- what follows the lock sees what committed before it was granted.
CREATE OR REPLACE FUNCTION {s}.create_group(channel text, grp text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    ch int := {s}.channel_id(channel);
    found int;
BEGIN
    SELECT id INTO found FROM {s}.groups WHERE channel_id = ch AND name = grp;
    IF found IS NOT NULL THEN
        RETURN found;
    END IF;
    PERFORM pg_advisory_xact_lock({ns}, ch);
    INSERT INTO {s}.groups (channel_id, name) VALUES (ch, grp)
        ON CONFLICT (channel_id, name) DO NOTHING RETURNING id INTO found;
    IF found IS NULL THEN
        SELECT id INTO found FROM {s}.groups WHERE channel_id = ch AND name = grp;
        RETURN found;
    END IF;
    INSERT INTO {s}.deliveries (group_id, entry, available_at, priority)
        SELECT found, m.id, m.available_at, {_DELIVERY_PRIORITY} FROM {s}.messages m
        WHERE m.channel_id = ch AND m.only_group IS NULL;
    RETURN found;
END $$;

CREATE OR REPLACE FUNCTION {s}.fan_out() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ch int;
BEGIN
    FOR ch IN SELECT DISTINCT channel_id FROM added ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock_shared({ns}, ch);
        PERFORM pg_notify({notify}, ch::text);
    END LOOP;
    INSERT INTO {s}.deliveries (group_id, entry, available_at, priority)
        SELECT g.id, m.id, m.available_at, {_DELIVERY_PRIORITY}
        FROM added m JOIN {s}.groups g ON g.channel_id = m.channel_id
        WHERE m.only_group IS NULL OR m.only_group = g.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER fan_out AFTER INSERT ON {s}.messages
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {s}.fan_out();

{_added_columns(s)}
ALTER TABLE {s}.deliveries ADD COLUMN IF NOT EXISTS priority smallint NOT NULL DEFAULT 0;
-- Prioritized delivery rows, claimed band by band before the others
-- (toolkit.channels.postgres.subscription): partial, so a channel without
-- priorities pays nothing for it.
CREATE INDEX IF NOT EXISTS deliveries_urgent
    ON {s}.deliveries (group_id, priority, available_at, entry) WHERE priority > 0;
-- Scheduled messages by due time (listing) and by message id (cancelling, replacing):
-- partial, so unscheduled sends do not pay for them.
-- A message's delivery rows, whatever their group: a message none names is settled,
-- and may be deleted (toolkit.channels.postgres.retention).
CREATE INDEX IF NOT EXISTS deliveries_entry ON {s}.deliveries (entry);
CREATE INDEX IF NOT EXISTS messages_scheduled ON {s}.messages (channel_id, available_at)
    WHERE deliver_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_scheduled_id ON {s}.messages (channel_id, message_id)
    WHERE deliver_at IS NOT NULL;

DELETE FROM {s}.schema_version;
INSERT INTO {s}.schema_version VALUES ({SCHEMA_VERSION});
"""


def _added_columns(s: str) -> str:
    """Wire columns a schema made by an older version lacks (a no-op on a new one)."""
    return "\n".join(
        f"ALTER TABLE {s}.{table} ADD COLUMN IF NOT EXISTS {column} {kind};"
        for table in ("messages", "dead_letters")
        for column, kind in WIRE_COLUMN_TYPES
    )


async def installed(conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str) -> bool:
    """Whether ``schema`` holds the current layout (one cheap query)."""
    # A query of the catalog, not to_regclass: it reads with this statement's snapshot,
    # so a process that waited for another's install sees it.
    cur = await conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'schema_version'",
        (schema,),
    )
    if await cur.fetchone() is None:
        return False
    cur = await conn.execute(f"SELECT max(version) FROM {quote_ident(schema)}.schema_version")
    row = await cur.fetchone()
    return bool(row and row[0] == SCHEMA_VERSION)


async def install(conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str) -> bool:
    """Create or bring up to date ``schema`` over ``conn`` (autocommit); False when it was
    current already. Several processes may call it at once: one installs, the others wait."""
    if await installed(conn, schema):
        return False
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_INSTALL_LOCK, 0))
        if await installed(conn, schema):
            return False
        await conn.execute(schema_sql(schema).encode())
    return True
