"""Deduplication's configuration: a pipe without it refuses at startup; windows parse;
windows per routing key (the schema's ``deduplicate``) cover their keys only."""

from __future__ import annotations

import asyncio
import decimal
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

import generated.ticket_service as ticket_service
from generated.user_service import UserServicePublisher
from generated.user_service.messages import Address, Plan, UserBillingChanged, UserRegistered
from tests.redis.apps import Memory
from toolkit import Consumer, Delivery, Dispatcher, Envelope, InMemoryTransport, Route
from toolkit.channels.base import Subscription
from toolkit.commands.run import parse_window
from toolkit.consumer import DeduplicationUnsupported


class Plain:
    """An in-memory subscription offering the core interface only (as RabbitMQ's does)."""

    def __init__(self, inner: Subscription) -> None:
        self._inner = inner
        self.channel, self.group, self.consumer = inner.channel, inner.group, inner.consumer

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        return await self._inner.receive(max_count, timeout)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._inner.ack(deliveries)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        await self._inner.reject(delivery, reason, details)

    async def close(self) -> None:
        await self._inner.close()


class PlainPipe:
    def __init__(self) -> None:
        self.memory = InMemoryTransport()

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        await self.memory.send(channel, envelopes)

    async def subscribe(self, channel: str, group: str, consumer: str) -> Plain:
        return Plain(await self.memory.subscribe(channel, group, consumer))

    async def close(self) -> None:
        await self.memory.close()


async def test_a_pipe_without_deduplication_refuses_it_at_startup() -> None:
    pipe = PlainPipe()
    consumer = Consumer(pipe, "ticket_commands", ticket_service.bind(Memory()), deduplicate=60.0)
    with pytest.raises(DeduplicationUnsupported, match="cannot deduplicate"):
        await consumer.subscription()
    # Without it, the same pipe runs.
    plain = Consumer(pipe, "ticket_commands", ticket_service.bind(Memory()))
    await plain.subscription()
    await plain.close()


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Consumer(
            InMemoryTransport(), "ticket_commands", ticket_service.bind(Memory()), deduplicate=0
        )


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("2.5", 2.5)]
)
def test_windows_parse(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "soon", "-1h", "0", "infh"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--deduplicate"):
        parse_window(text)


def _keyed(app: Memory, **windows: float) -> Dispatcher:
    """ticket_service's dispatcher with ``deduplicate`` windows on some routes, as the
    generated ``bind`` makes it when the schema gives them."""
    made = ticket_service.bind(app)
    routes = [
        Route(
            r.routing_key,
            r.kind,
            r.message_type,
            r.handler,
            deduplicate=windows.get(r.routing_key.replace(".", "_")),
        )
        for r in made.routes.values()
    ]
    return Dispatcher("ticket_service", routes, service_map=made.service_map)


async def _handle_copies(consumer: Consumer, memory: InMemoryTransport, app: Memory) -> None:
    """Publish each key twice with one id, twice with another, and let ``consumer`` run."""
    publisher = UserServicePublisher(memory)
    user = UserRegistered(
        user_id=uuid.uuid4(), email="a@b.c", full_name="A", registered_at=datetime.now(UTC)
    )
    changed = UserBillingChanged(
        user_id=uuid.uuid4(),
        plan=Plan.PRO,
        billing_address=Address(street="s", city="c", country="DE"),
        monthly_price=decimal.Decimal("9.90"),
    )
    await consumer.subscription()
    for message_id in ("u1", "u1", "u2"):
        await publisher.publish_user_registered(user, message_id=message_id)
    for message_id in ("b1", "b1"):
        await publisher.publish_user_billing_changed(changed, message_id=message_id)
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(5):
            while consumer.stats.received < 5:
                await asyncio.sleep(0.01)
    finally:
        consumer.stop()
        await task
        await consumer.close()


async def test_a_schema_window_deduplicates_its_key_only() -> None:
    memory, app = InMemoryTransport(), Memory()
    consumer = Consumer(memory, "user_events", _keyed(app, user_registered=60.0))
    await _handle_copies(consumer, memory, app)
    assert sorted(app.ids) == ["b1", "b1", "u1", "u2"]
    assert consumer.stats.deduplicated == 1


async def test_the_consumers_window_covers_the_keys_the_schema_leaves_out() -> None:
    memory, app = InMemoryTransport(), Memory()
    consumer = Consumer(memory, "user_events", _keyed(app, user_registered=60.0), deduplicate=30.0)
    await _handle_copies(consumer, memory, app)
    assert sorted(app.ids) == ["b1", "u1", "u2"]
    assert consumer.stats.deduplicated == 2


async def test_a_schema_window_on_a_pipe_without_deduplication_is_refused_at_startup() -> None:
    consumer = Consumer(PlainPipe(), "user_events", _keyed(Memory(), user_registered=60.0))
    with pytest.raises(
        DeduplicationUnsupported, match=r"for user\.registered \(deduplicate in the schema\)"
    ):
        await consumer.subscription()
