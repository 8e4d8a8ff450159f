"""Retention on PostgreSQL: settled messages beyond the kept history are deleted by the
consumers; what some group has not settled (pending, retrying, scheduled, not yet read)
stays however old; a group created later starts from what is kept; the look stays on
its indexes on a large table; the option comes from the URL."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.channels.suite.helpers import envelope
from tests.postgres.test_tables import plan
from toolkit.channels.postgres import PostgresSubscription, PostgresTransport
from toolkit.channels.postgres.retention import TRIM_EVERY
from toolkit.envelope import Envelope
from toolkit.pipe_settings import BindingError, PipeSettings
from toolkit.pipes import open_transport

CHANNEL = "user_events"


async def stored(transport: PostgresTransport) -> list[str]:
    """The message ids the channel's ``messages`` holds, oldest first."""
    async with transport.pool.connection("reading") as conn:
        cur = await conn.execute(
            f"SELECT message_id FROM {transport._s}.messages WHERE channel_id = %s ORDER BY id",
            (await transport.channel_id(CHANNEL),),
        )
        return [str(row[0]) for row in await cur.fetchall()]


async def send(transport: PostgresTransport, count: int, **headers: object) -> list[Envelope]:
    sent = [envelope(**headers) for _ in range(count)]
    for start in range(0, count, 1000):
        await transport.send(CHANNEL, sent[start : start + 1000])
    return sent


async def settle_all(sub: PostgresSubscription) -> int:
    handled = 0
    while batch := await sub.receive(100, 0.2):
        await sub.ack(batch)
        handled += len(batch)
    return handled


def ids(envelopes: list[Envelope]) -> list[str]:
    return [e.headers.message_id for e in envelopes]


async def test_consumers_delete_settled_messages_beyond_the_history(
    postgres_url: str, schema: str
) -> None:
    """5,000 messages sent and handled by two groups through ``receive`` and ``ack``:
    the consumers' own looks (in the background) leave the latest 100 and the few
    handled since the last look; one more look leaves exactly the latest 100, and
    ``status`` counts them."""
    transport = PostgresTransport(postgres_url, prefix=schema, history=100)
    subs = [await transport.subscribe(CHANNEL, g, "c1") for g in ("billing", "audit")]
    sent = await send(transport, 5000)
    for sub in subs:
        assert await settle_all(sub) == 5000
        await sub.close()  # waits for its look in flight
    kept = await stored(transport)
    assert len(kept) < 100 + 2 * TRIM_EVERY, len(kept)
    assert kept == ids(sent)[-len(kept) :]
    await subs[0].trim()
    assert await stored(transport) == ids(sent)[-100:]
    assert (await transport.status(CHANNEL)).length == 100
    await transport.close()


async def test_what_a_group_has_not_settled_stays(postgres_url: str, schema: str) -> None:
    """History 0 (nothing kept for its own sake): a message pending with a consumer,
    one waiting for a retry, one scheduled for later, and everything a group has not
    read yet all stay, whatever the other group did; dead letters stay in their table.
    Once settled, they go."""
    transport = PostgresTransport(postgres_url, prefix=schema, history=0)
    fast = await transport.subscribe(CHANNEL, "fast", "c1")
    slow = await transport.subscribe(CHANNEL, "slow", "c1")
    later = envelope(deliver_at_ms=int((time.time() + 3600) * 1000))
    await transport.send(CHANNEL, [later])
    sent = await send(transport, 10)
    batch = await fast.receive(10, 1.0)
    assert len(batch) == 10
    held, retried, dead, rest = batch[0], batch[1], batch[2], batch[3:]
    await fast.retry_later(retried, 3600)
    await fast.reject(dead, "boom")
    await fast.ack(rest)
    assert await fast.trim() == 0  # "slow" has read nothing
    assert await stored(transport) == [later.headers.message_id, *ids(sent)]

    assert await settle_all(slow) == 10
    assert await fast.trim() == 8  # the rest, and the dead-lettered one (a copy is kept)
    assert await stored(transport) == [
        later.headers.message_id,
        held.message_id,
        retried.message_id,
    ]
    assert [d.envelope.headers.message_id for d in await transport.dead_letters(CHANNEL)] == [
        dead.message_id
    ]
    await fast.ack([held])
    assert await fast.trim() == 1
    assert await stored(transport) == [later.headers.message_id, retried.message_id]
    assert await transport.cancel_scheduled(CHANNEL, [later.headers.message_id]) == 1
    await transport.close()


async def test_a_group_created_later_starts_from_what_is_kept(
    postgres_url: str, schema: str
) -> None:
    """A late group receives the kept history and whatever an earlier group has not
    settled, older than it: exactly the messages still stored, none of them gone."""
    transport = PostgresTransport(postgres_url, prefix=schema, history=20)
    early = await transport.subscribe(CHANNEL, "early", "c1")
    sent = await send(transport, 200)
    batch = await early.receive(10, 1.0)
    await early.retry_later(batch[0], 3600)
    await early.ack(batch[1:])
    assert await settle_all(early) == 190
    await early.trim()
    expected = [batch[0].message_id, *ids(sent)[-20:]]
    assert await stored(transport) == expected
    late = await transport.subscribe(CHANNEL, "late", "c1")
    got = []
    while found := await late.receive(100, 0.2):
        got.extend(d.message_id for d in found)
        await late.ack(found)
    assert got == expected
    assert late.settled_on_receipt() == (0, 0)
    await transport.close()


async def test_a_group_created_while_messages_are_deleted_gets_none_that_is_gone(
    postgres_url: str, schema: str
) -> None:
    """Looks run while groups are being created (each backfilling the messages still
    stored): a new group never gets a delivery row whose message is then deleted."""
    transport = PostgresTransport(postgres_url, prefix=schema, history=0)
    other = PostgresTransport(postgres_url, prefix=schema, history=0)
    subs = [await transport.subscribe(CHANNEL, "svc", f"c{i}") for i in range(4)]
    await send(transport, 5000)
    keeping = PostgresTransport(postgres_url, prefix=schema, history=None)  # no looks
    assert await settle_all(await keeping.subscribe(CHANNEL, "svc", "c")) == 5000
    await keeping.close()
    created: list[PostgresSubscription] = []
    done = asyncio.Event()

    async def trim(sub: PostgresSubscription) -> None:
        while not done.is_set():
            await sub.trim(scan=100)

    async def create() -> None:
        for i in range(15):
            created.append(await other.subscribe(CHANNEL, f"g{i}", "c1"))
        done.set()

    await asyncio.gather(create(), *(trim(sub) for sub in subs))
    async with transport.pool.connection("counting") as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM {transport._s}.deliveries d WHERE NOT EXISTS "
            f"(SELECT 1 FROM {transport._s}.messages m WHERE m.id = d.entry)"
        )
        row = await cur.fetchone()
    assert row is not None and row[0] == 0
    await transport.close()
    await other.close()


async def test_a_look_goes_on_past_messages_that_stay(postgres_url: str, schema: str) -> None:
    """A look reads a bounded window: unsettled messages at the start of the channel
    do not keep later looks from reaching the settled ones behind them."""
    transport = PostgresTransport(postgres_url, prefix=schema, history=0)
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    waiting = await send(transport, 30, deliver_at_ms=int((time.time() + 3600) * 1000))
    await send(transport, 70)
    assert await settle_all(sub) == 70
    deleted = [await sub.trim(scan=20) for _ in range(6)]
    assert deleted == [0, 10, 20, 20, 20, 0]
    assert await stored(transport) == ids(waiting)
    await transport.close()


async def test_a_long_history_is_measured_again_every_half_history_claimed(
    postgres_url: str, schema: str
) -> None:
    """The cut (a range of ``history`` index entries) is found again every history / 2
    claims, not at every look: its cost per message stays the same however long the
    history. Meanwhile it lags behind by what was sent since."""
    history = 4 * TRIM_EVERY  # found again every second look
    transport = PostgresTransport(postgres_url, prefix=schema, history=history)
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    settling = PostgresTransport(postgres_url, prefix=schema, history=None)  # no looks
    settler = await settling.subscribe(CHANNEL, "svc", "c0")
    sent = await send(transport, history + 2000)
    assert await settle_all(settler) == history + 2000
    assert await sub.trim() == 2000
    sent += await send(transport, 1000)
    assert await settle_all(settler) == 1000
    assert await sub.trim() == 0  # the cut found at the first look
    assert await sub.trim() == 1000  # found again
    assert await stored(transport) == ids(sent)[-history:]
    await settling.close()
    await transport.close()


async def test_the_look_stays_on_the_indexes_with_a_large_table(
    postgres_url: str, schema: str
) -> None:
    """20,000 messages, half of them unsettled, on statistics that know nothing of them
    (then on fresh ones): the cut a backward range of the primary key, the window a
    forward range, each message's delivery rows one probe of ``deliveries_entry``, the
    deletion by ctid; nothing sorted, hashed or scanned whole."""
    transport = PostgresTransport(postgres_url, prefix=schema, history=1000)
    sub = await transport.subscribe(CHANNEL, "svc", "c1")
    await send(transport, 20_000)
    keeping = PostgresTransport(postgres_url, prefix=schema, history=None)  # no looks
    first = await keeping.subscribe(CHANNEL, "svc", "c0")
    for _ in range(100):
        await first.ack(await first.receive(100, 1.0))
    await keeping.close()
    for stale in (True, False):
        if not stale:
            async with transport.pool.connection("analysing") as conn:
                await conn.execute(f"ANALYZE {transport._s}.messages")
                await conn.execute(f"ANALYZE {transport._s}.deliveries")
        cut = await plan(transport, sub._cut_query, (sub.channel_id, 1000))
        assert "Index Only Scan Backward using messages_pkey on messages" in cut, cut
        params = {"ch": sub.channel_id, "after": 0, "cut": 19_000, "scan": 5000}
        text = await plan(transport, sub._look_query, params)
        assert "Index Scan using messages_pkey on messages m" in text, text
        assert "Scan using deliveries_entry on deliveries d" in text, text
        assert "Tid Scan on messages x" in text, text
        for bad in ("Seq Scan", "Bitmap", "Sort", "Hash", "Materialize"):
            assert bad not in text and bad not in cut, text + cut
    assert await sub.trim() == 5000
    assert await sub.trim() == 5000
    assert await sub.trim() == 0  # the rest is not settled
    assert len(await stored(transport)) == 10_000
    await transport.close()


async def test_the_history_comes_from_the_pipe_url(postgres_url: str, schema: str) -> None:
    """``?history=N`` (or ``all``) is the toolkit's, taken out before libpq (which
    refuses options it does not know); a bad value is a one-line error."""
    settings = PipeSettings(prefix=schema)
    transport = open_transport(f"{postgres_url}?history=5&connect_timeout=3", settings)
    assert isinstance(transport, PostgresTransport)
    assert transport.history == 5
    await transport.check()
    await transport.close()
    default = open_transport(postgres_url, settings)
    assert isinstance(default, PostgresTransport) and default.history == 10_000
    everything = open_transport(f"{postgres_url}?history=all", settings)
    assert isinstance(everything, PostgresTransport) and everything.history is None
    with pytest.raises(BindingError, match="history must be a whole number of messages"):
        open_transport(f"{postgres_url}?history=lots", settings)
