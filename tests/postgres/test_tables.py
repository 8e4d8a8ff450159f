"""The schema and the plans: installed once however many processes start together,
claims and acknowledgements stay on their indexes with a large backlog on statistics
that know nothing of it, and a group created while messages are being sent misses none."""

from __future__ import annotations

import asyncio
import time

from tests.channels.suite.helpers import envelope
from toolkit.channels.postgres import PostgresTransport
from toolkit.channels.postgres.rows import row_of_envelope

CHANNEL = "user_events"


async def test_the_schema_is_installed_once_by_concurrent_transports(
    postgres_url: str, schema: str
) -> None:
    transports = [PostgresTransport(postgres_url, prefix=schema) for _ in range(4)]
    created = await asyncio.gather(*(t.install() for t in transports))
    assert sorted(created) == [False, False, False, True]
    assert await transports[0].install() is False
    for t in transports:
        await t.close()


async def plan(transport: PostgresTransport, query: bytes, params: object) -> str:
    async with transport.pool.connection("explaining") as conn:
        cur = await conn.execute(b"EXPLAIN " + query, params)  # type: ignore[arg-type]
        return "\n".join(row[0] for row in await cur.fetchall())


async def test_claims_and_acks_stay_on_the_indexes_with_a_large_backlog(
    postgres_url: str, schema: str
) -> None:
    """A backlog on tables never analysed since they were empty (then analysed), and a
    group created after it (its rows all made at once), one message in 100 urgent: the
    claim is an index range per priority band (deliveries_urgent for 9 to 1,
    deliveries_due for 0) and the acknowledgement a primary key lookup, never a sort or
    a scan of the backlog."""
    transport = PostgresTransport(postgres_url, prefix=schema)
    first = await transport.subscribe(CHANNEL, "early", "c1")
    for _ in range(20):
        sent = [envelope(priority=5 if i % 100 == 0 else 0) for i in range(1000)]
        await transport.send(CHANNEL, sent)
    late = await transport.subscribe(CHANNEL, "late", "c1")
    for stale in (True, False):
        if not stale:
            async with transport.pool.connection("analysing") as conn:
                await conn.execute(f"ANALYZE {transport._s}.deliveries")
        for sub in (first, late):
            claim = await plan(transport, sub._claim, dict(sub._claim_params, n=100))
            assert "Index Scan using deliveries_urgent" in claim, claim
            assert "Index Scan using deliveries_due" in claim, claim
            assert "Bitmap" not in claim and "Seq Scan on deliveries" not in claim, claim
            assert "Sort Key: deliveries" not in claim, claim
            batch = await sub.receive(100, 1.0)
            assert len(batch) == 100
            if stale:  # the 200 urgent ones first, highest priority first
                assert {d.envelope.headers.priority for d in batch} == {5}
            ack = await plan(transport, sub._ack, ([d.delivery_id for d in batch],))
            assert "Index Scan using deliveries_pkey" in ack, ack
            await sub.ack(batch)
    await transport.close()


async def test_the_status_stays_on_the_indexes_with_a_large_backlog(
    postgres_url: str, schema: str
) -> None:
    """``status`` on a 20,000 message backlog, statistics that know nothing of it: the
    length an index-only count, each group one index range aggregated without a sort,
    the oldest pending message one primary key lookup; and every figure right."""
    transport = PostgresTransport(postgres_url, prefix=schema)
    first = await transport.subscribe(CHANNEL, "early", "c1")
    for _ in range(20):
        await transport.send(CHANNEL, [envelope() for _ in range(1000)])
    await transport.subscribe(CHANNEL, "late", "c2")
    batch = await first.receive(100, 1.0)
    await first.retry_later(batch[0], 3600)
    channel_query, groups_query = transport._status_queries()
    length = await plan(transport, channel_query, (CHANNEL,))
    assert "Index Only Scan using messages_pkey" in length, length
    assert "Index Only Scan using dead_letters_channel" in length, length
    groups = await plan(transport, groups_query, {"ch": await transport.channel_id(CHANNEL)})
    assert "Index Scan using deliveries_due on deliveries" in groups, groups
    assert "Index Cond: ((channel_id = 1) AND (id = (min(d.entry)" in groups, groups
    for text in (length, groups):
        assert "Seq Scan" not in text and "Bitmap" not in text, text
        assert "Sort" not in text and "Hash" not in text and "Materialize" not in text, text
    status = await transport.status(CHANNEL)
    assert status.length == 20_000 and status.dead_letters == 0
    early, late = status.groups
    assert (early.name, early.lag, early.pending, early.retrying) == ("early", 19_900, 100, 1)
    assert [(c.name, c.pending) for c in early.consumers] == [("c1", 99)]
    assert (late.name, late.lag, late.pending, late.retrying, late.consumers) == (
        "late",
        20_000,
        0,
        0,
        [],
    )
    await transport.close()


async def test_a_group_created_while_messages_are_sent_misses_none(
    postgres_url: str, schema: str
) -> None:
    sender = PostgresTransport(postgres_url, prefix=schema)
    other = PostgresTransport(postgres_url, prefix=schema)
    await sender.channel_id(CHANNEL)
    sent: list[str] = []

    async def send() -> None:
        for _ in range(100):
            batch = [envelope() for _ in range(20)]
            await asyncio.gather(*(sender.send(CHANNEL, [e]) for e in batch))
            sent.extend(e.headers.message_id for e in batch)

    async def create() -> list[str]:
        names = []
        for i in range(10):
            await asyncio.sleep(0.02)
            await (await other.subscribe(CHANNEL, f"g{i}", "c1")).close()
            names.append(f"g{i}")
        return names

    _, groups = await asyncio.gather(send(), create())
    for group in groups:
        sub = await other.subscribe(CHANNEL, group, "c1")
        got: list[str] = []
        while True:
            batch = await sub.receive(1000, 0.2)
            if not batch:
                break
            got.extend(d.message_id for d in batch)
            await sub.ack(batch)
        assert sorted(got) == sorted(sent), group
    await sender.close()
    await other.close()


async def test_scheduled_messages_stay_on_the_indexes_with_a_large_backlog(
    postgres_url: str, schema: str
) -> None:
    """Scheduling (which replaces a waiting message of the same id), listing and
    cancelling on a 20,000 message backlog and statistics that know nothing of it:
    the waiting messages are listed on the partial index ``messages_scheduled`` and
    found by id on ``messages_scheduled_id``, their delivery rows on ``deliveries_due``;
    never a scan of the backlog nor of every waiting message."""
    transport = PostgresTransport(postgres_url, prefix=schema)
    await transport.subscribe(CHANNEL, "early", "c1")
    for _ in range(20):
        await transport.send(CHANNEL, [envelope() for _ in range(1000)])
    due = int((time.time() + 3600) * 1000)
    later = [envelope(deliver_at_ms=due + n) for n in range(1000)]
    await transport.send(CHANNEL, later)
    await transport.subscribe(CHANNEL, "late", "c2")
    ch = await transport.channel_id(CHANNEL)
    ids = [e.headers.message_id for e in later[:10]]
    listing, cancelling = transport._schedule_queries()
    listed = await plan(transport, listing, (ch, 10))
    assert "Index Scan using messages_scheduled" in listed, listed
    cancelled = await plan(transport, cancelling, (ch, ids))
    assert "messages_scheduled_id" in cancelled and "deliveries_due" in cancelled, cancelled
    rows = [row_of_envelope(e) for e in later[:10]]
    params = [[ch] * len(rows), *map(list, zip(*rows, strict=True))]
    inserted = await plan(transport, transport._insert_scheduled, params)
    assert "messages_scheduled_id" in inserted and "deliveries_due" in inserted, inserted
    for text in (cancelled, inserted):
        assert "Index Cond: ((channel_id = " in text and "AND (message_id = " in text, text
        assert "AND (available_at = gone" in text and "TID Cond" in text, text
    for text in (listed, cancelled, inserted):
        assert "Seq Scan on messages" not in text and "Seq Scan on deliveries" not in text, text
    waiting = await transport.scheduled(CHANNEL, count=10)
    assert [s.message_id for s in waiting] == ids
    assert await transport.cancel_scheduled(CHANNEL, ids) == 10
    async with transport.pool.connection("counting") as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM {transport._s}.deliveries WHERE available_at > now()"
        )
        row = await cur.fetchone()
    assert row is not None and row[0] == 2 * 990
    await transport.close()


async def test_a_schema_of_version_4_gains_priorities_and_keeps_its_messages(
    postgres_url: str, schema: str
) -> None:
    """The layout before priorities (no ``priority`` columns, no deliveries_urgent,
    version 4) is brought up to date by the next transport: the messages waiting in it
    are delivered, and urgent ones sent afterwards overtake them."""
    old = PostgresTransport(postgres_url, prefix=schema)
    sub = await old.subscribe(CHANNEL, "svc", "c1")
    waiting = [envelope() for _ in range(5)]
    await old.send(CHANNEL, waiting)
    s = old._s
    async with old.pool.connection("downgrading") as conn:
        for table in ("messages", "dead_letters", "deliveries"):
            await conn.execute(f"ALTER TABLE {s}.{table} DROP COLUMN priority")
        await conn.execute(f"UPDATE {s}.schema_version SET version = 4")
    await sub.close()
    await old.close()

    transport = PostgresTransport(postgres_url, prefix=schema)
    assert await transport.install() is True
    urgent = envelope(priority=9)
    await transport.send(CHANNEL, [urgent])
    sub = await transport.subscribe(CHANNEL, "svc", "c2")
    got = await sub.receive(10, 1.0)
    assert [d.message_id for d in got] == [
        urgent.headers.message_id,
        *(e.headers.message_id for e in waiting),
    ]
    assert got[0].envelope.headers.priority == 9
    await sub.ack(got)
    await transport.close()
