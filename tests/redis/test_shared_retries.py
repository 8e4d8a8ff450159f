"""Retries in a group of several consumers: "empty" asks the channel, and what a
consumer keeps about the retries it scheduled does not grow with the messages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, Delivery, RetryPolicy
from toolkit.channels.redis import RedisTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


def fail_first_delivery(message: Any, meta: Delivery) -> None:
    if meta.delivery_count == 1:
        raise ConnectionError("downstream not ready")


async def test_until_empty_waits_for_retries_another_consumer_scheduled(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport()
    sent = [ticket_create(i) for i in range(5)]
    await transport.send(CHANNEL, sent)
    scheduler = Consumer(
        transport,
        CHANNEL,
        ticket_service.bind(Memory(fail_first_delivery)),
        consumer_name="scheduler",
        retry=RetryPolicy(attempts=3, base=1.0, jitter=0),
    )
    await scheduler.run(limit=5)
    await scheduler.close()  # its retries stay scheduled in the group
    assert scheduler.stats.retried == 5

    handlers = Memory()
    other = Consumer(transport, CHANNEL, ticket_service.bind(handlers), consumer_name="other")
    started = time.monotonic()
    stats = await other.run(until_empty=True, time_limit=20)
    assert time.monotonic() - started >= 0.5  # it waited for them to fall due
    assert stats.handled == 5
    assert sorted(handlers.ids) == sorted(e.headers.message_id for e in sent)
    assert {d.delivery_count for d in handlers.deliveries} == {2}
    assert await transport.pending_count(CHANNEL, GROUP) == 0


def bookkeeping(*objects: object) -> dict[str, int]:
    """The size of every list, dict and set an object holds (slots included)."""
    sizes: dict[str, int] = {}
    for obj in objects:
        names = [*getattr(obj, "__dict__", {}), *getattr(type(obj), "__slots__", ())]
        for name in names:
            value = getattr(obj, name, None)
            if isinstance(value, (list, dict, set)):
                sizes[f"{type(obj).__name__}.{name}"] = len(value)
    return sizes


async def test_retry_bookkeeping_stays_bounded_when_another_consumer_takes_the_retries(
    make_transport: Any,
) -> None:
    batch, total = 50, 3000
    handlers = [Memory(fail_first_delivery), Memory(fail_first_delivery)]
    consumers = [
        Consumer(
            make_transport(visibility_timeout=2.0),
            CHANNEL,
            ticket_service.bind(h),
            consumer_name=name,
            batch_size=batch,
            retry=RetryPolicy(attempts=3, base=0.01, cap=0.01, jitter=0),
        )
        for name, h in zip(("a", "b"), handlers, strict=True)
    ]
    subs = [await c.subscription() for c in consumers]
    largest: dict[str, int] = {}
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            for c, s in zip(consumers, subs, strict=True):
                for name, size in bookkeeping(c, c._owed, s).items():
                    largest[name] = max(largest.get(name, 0), size)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    runs = [asyncio.create_task(c.run()) for c in consumers]
    sender: RedisTransport = make_transport()
    for i in range(0, total, 100):
        await sender.send(CHANNEL, [ticket_create(n) for n in range(i, i + 100)])
    deadline = time.monotonic() + 30
    while sum(len(h.deliveries) for h in handlers) < total:
        assert time.monotonic() < deadline, "not every message was handled"
        await asyncio.sleep(0.02)
    for c in consumers:
        c.stop()
    await asyncio.gather(*runs)
    done.set()
    await watcher
    # Both took retries the other scheduled; none kept a record per retried message.
    taken = [sum(1 for d in h.deliveries if d.delivery_count == 2) for h in handlers]
    assert sum(taken) == total and all(taken)
    assert sum(c.stats.retried for c in consumers) == total
    assert largest and max(largest.values()) <= batch, largest
    for c in consumers:
        await c.close()
