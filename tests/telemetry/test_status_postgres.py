"""`toolkit status` against a real PostgreSQL (a schema of its own per test) holding a known
backlog, pending (leased) rows, a retry waiting, a dead letter, a group the service map
does not give the channel and a consumer that died (its lease ran out): each figure exact.
Also on a pipe bound to one channel beside Redis, on a schema not installed yet, and the
lag gauges of the telemetry read from it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

from tests.redis.messages import ticket_create, user_registered
from tests.telemetry.conftest import Otel
from toolkit.channels.postgres import PostgresTransport
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main

CHANNEL = "ticket_commands"
#: the lease of the consumers that fill the channel, and the one `toolkit status` is told
VISIBILITY = 1.0
SILENCE = 1.3


async def fill(url: str, schema: str) -> None:
    """ticket_commands: 10 commands; worker-a receives 4 (acks 1, dead-letters 1, schedules
    1 for a retry), dead-b receives 2 and goes silent past its lease, worker-a receives 1
    more later. legacy_service: a group the service map does not give the channel."""
    transport = PostgresTransport(url, prefix=schema, visibility_timeout=VISIBILITY)
    await transport.send(CHANNEL, [ticket_create(n) for n in range(10)])
    worker = await transport.subscribe(CHANNEL, "ticket_service", "worker-a")
    got = await worker.receive(4, 0)
    assert len(got) == 4
    await worker.ack(got[:1])
    await worker.reject(got[1], "test: bad")
    await worker.retry_later(got[2], 3600)
    dead = await transport.subscribe(CHANNEL, "ticket_service", "dead-b")
    assert len(await dead.receive(2, 0)) == 2
    await transport.subscribe(CHANNEL, "legacy_service", "never-read")
    await asyncio.sleep(SILENCE)
    # The backlog is older than the leases that ran out: worker-a takes a new message.
    assert len(await worker.receive(1, 0)) == 1
    await transport.close()  # the subscriptions are not closed: dead-b keeps its rows


def status_json(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    """The document of `toolkit status --json`; no channel left out for want of status."""
    capsys.readouterr()
    assert main(["status", *flags, "--json"]) == 0
    captured = capsys.readouterr()
    assert "no status from the pipe" not in captured.err, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


def check_ticket_commands(commands: dict[str, Any]) -> None:
    """The figures of :func:`fill`: those of the Redis test, but for the retry waiting."""
    assert (commands["length"], commands["dead_letters"]) == (10, 1)
    assert commands["missing_groups"] == []
    legacy, tickets = commands["groups"]
    figures = ("name", "lag", "pending", "retrying", "oldest_pending_age", "retired")
    assert [legacy[f] for f in figures] == ["legacy_service", 10, 0, 0, None, True]
    assert legacy["consumers"] == []
    # pending: 4 - 1 acked - 1 dead-lettered, + 2, + 1
    assert [tickets[f] for f in figures[:4]] == ["ticket_service", 3, 5, 1]
    assert tickets["retired"] is False
    assert SILENCE < tickets["oldest_pending_age"] < 30
    holders = [(c["name"], c["pending"], c["dead"], c["gone"]) for c in tickets["consumers"]]
    # The retry waiting is held by nobody on PostgreSQL (Redis leaves it with worker-a).
    assert holders == [("dead-b", 2, True, False), ("worker-a", 2, False, False)]
    dead_b, worker_a = tickets["consumers"]
    assert SILENCE < dead_b["idle"] < 30
    assert 0 <= worker_a["idle"] < 1


def test_json_figures_are_exact(
    postgres_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill(postgres_url, schema))
    flags = ("--url", postgres_url, "--prefix", schema, "--visibility-timeout", str(VISIBILITY))
    doc = status_json(capsys, *flags)
    by_name = {c["channel"]: c for c in doc["channels"]}
    assert sorted(by_name) == ["billing_events", "ticket_commands", "user_events"]
    check_ticket_commands(by_name[CHANNEL])
    users = by_name["user_events"]
    assert (users["length"], users["dead_letters"], users["groups"]) == (0, 0, [])
    assert users["missing_groups"] == ["billing_service", "ticket_service"]
    # The table names the dead consumer too.
    assert main(["status", CHANNEL, *flags]) == 0
    table = capsys.readouterr().out
    assert "ticket_commands: 10 entries, 1 dead letter" in table
    [dead] = [line for line in table.splitlines() if line.startswith("  dead-b  ")]
    assert dead.endswith("  dead")


def test_a_schema_not_installed_is_empty_and_stays_uninstalled(
    postgres_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = status_json(capsys, "--url", postgres_url, "--prefix", schema)
    assert [
        (c["channel"], c["length"], c["dead_letters"], c["groups"]) for c in doc["channels"]
    ] == [
        ("billing_events", 0, 0, []),
        ("ticket_commands", 0, 0, []),
        ("user_events", 0, 0, []),
    ]
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert found is None


async def fill_redis(url: str, prefix: str) -> None:
    transport = RedisTransport(url, prefix=prefix)
    await transport.send("user_events", [user_registered(n) for n in range(2)])
    await transport.close()


def test_a_postgresql_channel_beside_redis_ones(
    postgres_url: str,
    schema: str,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One prefix for both pipes: the Redis server is the tests' own.
    asyncio.run(fill(postgres_url, schema))
    asyncio.run(fill_redis(redis_url, schema))
    flags = (
        *("--url", redis_url, "--bind", f"{CHANNEL}={postgres_url}"),
        *("--prefix", schema, "--visibility-timeout", str(VISIBILITY)),
    )
    doc = status_json(capsys, *flags)
    by_name = {c["channel"]: c for c in doc["channels"]}
    assert sorted(by_name) == ["billing_events", "ticket_commands", "user_events"]
    check_ticket_commands(by_name[CHANNEL])
    assert (by_name["user_events"]["length"], by_name["billing_events"]["length"]) == (2, 0)


ORDERS = (("toolkit.channel", CHANNEL), ("toolkit.group", "ticket_service"))
LEGACY = (("toolkit.channel", CHANNEL), ("toolkit.group", "legacy_service"))


async def test_the_lag_gauges_read_a_postgresql_channel(
    otel: Otel, postgres_url: str, schema: str
) -> None:
    await fill(postgres_url, schema)
    transport = PostgresTransport(postgres_url, prefix=schema, visibility_timeout=VISIBILITY)
    try:
        await otel.telemetry.read_status(transport, CHANNEL)
    finally:
        await transport.close()
    assert otel.points("toolkit.consumer.lag") == {ORDERS: 3, LEGACY: 10}
    assert otel.points("toolkit.consumer.pending") == {ORDERS: 5, LEGACY: 0}
    assert otel.points("toolkit.consumer.retrying") == {ORDERS: 1, LEGACY: 0}
