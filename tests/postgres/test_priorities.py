"""Priorities on PostgreSQL through the consumer (issue 12): a backlog of 10,000
low-priority commands, then 100 urgent ones sent while the first batch is being
handled: the urgent ones are handled within the next batch or two, not after the
backlog. Prints where they landed."""

from __future__ import annotations

from typing import Any

import pytest

import generated.ticket_service as ticket_service
from tests.redis.messages import ticket_create
from toolkit import Delivery, Runner, RunOptions
from toolkit.channels.postgres import PostgresTransport

CHANNEL = "ticket_commands"
BACKLOG = 10_000
URGENT = 100
BATCH = 100


class Handlers:
    """Records the order of handling; sends the urgent ones halfway through the first batch."""

    def __init__(self, transport: PostgresTransport) -> None:
        self.transport = transport
        self.order: list[str] = []
        self.urgent: set[str] = set()
        self.sent_at = -1

    async def on_ticket_create(self, message: Any, meta: Delivery) -> None:
        self.order.append(meta.message_id)
        if len(self.order) == BATCH // 2:
            urgent = [ticket_create(i, priority=9) for i in range(URGENT)]
            await self.transport.send(CHANNEL, urgent)
            self.urgent = {e.headers.message_id for e in urgent}
            self.sent_at = len(self.order)

    def on_user_registered(self, message: Any, meta: Delivery) -> None: ...

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None: ...


async def test_urgent_commands_overtake_a_backlog_of_ten_thousand(
    postgres_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = PostgresTransport(postgres_url, prefix=schema)
    await (await transport.subscribe(CHANNEL, "ticket_service", "setup")).close()
    low = [ticket_create(i) for i in range(BACKLOG)]
    for start in range(0, BACKLOG, 1000):
        await transport.send(CHANNEL, low[start : start + 1000])
    handlers = Handlers(transport)
    runner = Runner(
        transport,
        CHANNEL,
        ticket_service.bind(handlers),
        RunOptions(limit=BACKLOG + URGENT, batch_size=BATCH),
    )
    stats = await runner.run()
    assert stats.handled == BACKLOG + URGENT
    after = handlers.order[handlers.sent_at :]
    positions = [i + 1 for i, mid in enumerate(after) if mid in handlers.urgent]
    with capsys.disabled():
        print(
            f"\n[priorities] PostgreSQL, Runner, batches of {BATCH}: {URGENT} urgent sent "
            f"behind {BACKLOG - handlers.sent_at:,} waiting, handled at positions "
            f"{positions[0]}-{positions[-1]} after they were sent (the batch in hand "
            f"had {BATCH - handlers.sent_at} left)"
        )
    assert len(positions) == URGENT
    # The rest of the batch in hand, then the next batch: all of them.
    assert positions[-1] <= 2 * BATCH, positions
    await transport.close()


async def test_a_retried_and_a_replayed_message_keep_their_priority(
    postgres_url: str, schema: str
) -> None:
    """A retry (the delivery row moves in time) and a replay from the dead letters (a
    new message row from the dead letter's columns) come back ahead of the backlog."""
    transport = PostgresTransport(postgres_url, prefix=schema)
    sub = await transport.subscribe(CHANNEL, "ticket_service", "c1")
    retried, dead = ticket_create(1, priority=7), ticket_create(2, priority=3)
    await transport.send(CHANNEL, [retried, dead])
    first = await sub.receive(2, 1.0)
    assert [d.message_id for d in first] == [retried.headers.message_id, dead.headers.message_id]
    await transport.send(CHANNEL, [ticket_create(i) for i in range(10, 20)])
    await sub.retry_later(first[0], 0.0)
    await sub.reject(first[1], "test")
    (letter,) = await transport.dead_letters(CHANNEL)
    assert await transport.replay(CHANNEL, [letter.dead_letter_id]) == 1
    again = await sub.receive(3, 1.0)
    assert [(d.message_id, d.envelope.headers.priority) for d in again[:2]] == [
        (retried.headers.message_id, 7),
        (dead.headers.message_id, 3),
    ]
    assert again[2].envelope.headers.priority == 0
    await sub.close()
    await transport.close()


async def test_a_priority_the_wire_refuses_is_dead_lettered_with_the_reason(
    postgres_url: str, schema: str
) -> None:
    """Sent raw (the bus checks priorities; a transport does not): stored as a header
    in ``raw``, not in the smallint column (40,000 would not even fit), and read back
    as every pipe reads it: dead-lettered, the rest delivered."""
    transport = PostgresTransport(postgres_url, prefix=schema)
    sub = await transport.subscribe(CHANNEL, "ticket_service", "c1")
    good = ticket_create(0, priority=3)
    bad = [ticket_create(n, priority=p) for n, p in ((1, 42), (2, 40_000), (3, -1))]
    await transport.send(CHANNEL, [*bad, good])
    got = await sub.receive(10, 1.0)
    assert [d.message_id for d in got] == [good.headers.message_id]
    reasons = sorted(d.reason for d in await transport.dead_letters(CHANNEL))
    assert reasons == [
        f"invalid envelope: priority must be an integer from 0 to 9, not '{p}'"
        for p in ("-1", "40000", "42")
    ]
    await sub.close()
    await transport.close()
