"""Lease renewal on Redis: a batch slower than the visibility timeout stays with its consumer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

import generated.ticket_service as ticket_service
from tests.channels.suite.helpers import Running, wait_for
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, Delivery, Dispatcher, Route, Runner, RunOptions
from toolkit.channels.redis import RedisTransport
from toolkit.channels.redis.raw import execute

CHANNEL = "ticket_commands"
VISIBILITY = 1.0
HANDLING = 3 * VISIBILITY


class Ticket(msgspec.Struct):
    subject: str


class Slow:
    """A ticket.create handler that takes HANDLING seconds: blocking (time.sleep) or not."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.started = 0.0
        self.finished = 0.0

    def sync(self, message: Ticket, meta: Delivery) -> None:
        self.started = time.monotonic()
        time.sleep(HANDLING)
        self.deliveries.append(meta)
        self.finished = time.monotonic()

    async def coroutine(self, message: Ticket, meta: Delivery) -> None:
        self.started = time.monotonic()
        await asyncio.sleep(HANDLING)
        self.deliveries.append(meta)
        self.finished = time.monotonic()


async def pending(transport: RedisTransport, prefix: str) -> list[Any]:
    """XPENDING's extended form: [id, consumer, idle ms, deliveries] per pending entry."""
    stream = f"{prefix}:{{{CHANNEL}}}"
    found: list[Any] = await execute(
        transport.redis, "XPENDING", stream, "ticket_service", "-", "+", 10
    )
    return found


@pytest.mark.parametrize("kind", ["coroutine", "sync in threads"])
async def test_a_handler_taking_three_visibility_timeouts_is_handled_once(
    make_transport: Any, prefix: str, kind: str
) -> None:
    slow = Slow()
    if kind == "coroutine":
        handler, options = slow.coroutine, RunOptions(block_timeout=0.2)
    else:
        handler, options = slow.sync, RunOptions(block_timeout=0.2, sync_handlers="thread")
    dispatcher = Dispatcher("ticket_service", [Route("ticket.create", "command", Ticket, handler)])
    holder = Runner(
        make_transport(visibility_timeout=VISIBILITY),
        CHANNEL,
        dispatcher,
        options,
        consumer_name="holder",
    )
    # The second consumer of the group, reclaiming what has been idle for VISIBILITY.
    others = Memory()
    other = Consumer(
        make_transport(visibility_timeout=VISIBILITY),
        CHANNEL,
        ticket_service.bind(others),
        consumer_name="other",
        block_timeout=0.2,
    )
    sender: RedisTransport = make_transport()
    await sender.send(CHANNEL, [ticket_create(1)])
    task = asyncio.create_task(holder.run())
    try:
        await wait_for(lambda: slow.started > 0)
        async with Running(other):
            # Past twice the visibility timeout, still held by its first consumer,
            # delivered once.
            await asyncio.sleep(slow.started + 2.5 * VISIBILITY - time.monotonic())
            entries = await pending(sender, prefix)
            assert [(owner, count) for _, owner, _, count in entries] == [(b"holder", 1)]
            assert entries[0][2] < VISIBILITY * 1000  # idle time, ms: renewed
            await wait_for(lambda: slow.finished > 0)
            await asyncio.sleep(VISIBILITY / 2)
    finally:
        holder.stop()
        await asyncio.wait_for(task, 10)
    assert [d.delivery_count for d in slow.deliveries] == [1]
    assert others.deliveries == [] and other.stats.received == 0
    assert holder.stats.handled == 1
    assert await pending(sender, prefix) == []
