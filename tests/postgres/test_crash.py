"""At-least-once under crashes on PostgreSQL: ``toolkit run`` consumer processes killed with
SIGKILL mid-batch; their leased rows come back when the visibility timeout runs out.
Scheduled messages through the kills and a crash (``immediate`` stop) of a private cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.pipes.crash import (
    CHANNEL,
    CrashRun,
    kill_consumers_repeatedly,
    scheduled_through_kills_and_a_restart,
)
from tests.postgres.server import PrivateCluster
from tests.redis.messages import ticket_create
from toolkit.channels.postgres import PostgresTransport


def test_consumers_killed_mid_batch_lose_nothing(
    postgres_url: str, schema: str, tmp_path: Path
) -> None:
    print(crash_run(postgres_url, schema, tmp_path, None))


def test_with_deduplication_only_the_crash_windows_are_handled_twice(
    postgres_url: str, schema: str, tmp_path: Path
) -> None:
    """With ``--deduplicate`` and a copy of every tenth message: see tests/pipes/crash.py."""
    print(crash_run(postgres_url, schema, tmp_path, "1h"))


def test_with_exactly_once_each_message_has_one_effect(
    postgres_url: str, schema: str, tmp_path: Path
) -> None:
    """``--exactly-once``: the handler inserts a row per handling through the step's
    transaction (tests/postgres/apps.py). Handlers still run twice (the log, outside the
    transaction, shows it), but the killed runs' rows are rolled back with their records
    and acknowledgements: after the kills, exactly one row per message, copies included."""
    table = f'"{schema}".effects'
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f"CREATE TABLE {table} (message_id text, delivery int)")
    run = crash_run(
        postgres_url,
        schema,
        tmp_path,
        "1h",
        exactly_once={"TOOLKIT_TEST_EFFECTS": table},
    )
    with psycopg.connect(postgres_url) as conn:
        rows, distinct, most = conn.execute(
            "SELECT count(*), count(DISTINCT message_id), "
            f"coalesce(max(n), 0) FROM (SELECT message_id, count(*) OVER "
            f"(PARTITION BY message_id) AS n FROM {table}) e"
        ).fetchone() or (0, 0, 0)
    print(run, f"effects: {rows} rows, {distinct} messages, at most {most} per message")
    assert (rows, distinct, most) == (20_000, 20_000, 1)


def test_scheduled_messages_through_consumer_kills_and_a_server_crash(tmp_path: Path) -> None:
    """Issue 12: 10,000 messages due over 10 s, consumers SIGKILLed meanwhile and the
    server stopped ``immediate`` (no shutdown checkpoint: recovery from the WAL) and
    started again: each handled, none before its due time; prints the lateness."""
    cluster = PrivateCluster().init()
    schema = "sched"

    def restart() -> None:
        cluster.stop("immediate")
        time.sleep(0.5)
        cluster.start()

    try:
        run = scheduled_through_kills_and_a_restart(
            cluster.url,
            schema,
            tmp_path,
            restart=restart,
            left=deliveries_left(cluster.url, schema),
            flags=("--visibility-timeout", "1"),
        )
    finally:
        cluster.remove()
    print(run)


def deliveries_left(url: str, schema: str) -> Callable[[], int]:
    """What the groups have not settled: delivery rows (waiting scheduled messages too)."""

    async def count() -> int:
        transport = PostgresTransport(url, prefix=schema)
        async with transport.pool.connection("counting") as conn:
            cur = await conn.execute(f'SELECT count(*) FROM "{schema}".deliveries')
            row = await cur.fetchone()
        await transport.close()
        return int(row[0]) if row else -1

    return lambda: asyncio.run(count())


def crash_run(
    postgres_url: str,
    schema: str,
    tmp_path: Path,
    deduplicate: str | None,
    *,
    exactly_once: dict[str, str] | None = None,
) -> CrashRun:
    """The shared crash test; ``exactly_once``: with ``--exactly-once`` and the
    ``Effects`` app, given these variables."""
    flags: tuple[str, ...] = ("--visibility-timeout", "1")
    if exactly_once is not None:
        flags = (*flags, "--exactly-once")

    sent = {CHANNEL: [ticket_create(i) for i in range(20_000)]}
    run: CrashRun = kill_consumers_repeatedly(
        postgres_url,
        schema,
        tmp_path,
        sent,
        left=deliveries_left(postgres_url, schema),
        flags=flags,
        deduplicate=deduplicate,
        app="Recorder" if exactly_once is None else "tests.postgres.apps:Effects",
        env=exactly_once,
    )
    return run
