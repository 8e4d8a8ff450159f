"""Deduplication's configuration: a pipe without it refuses at startup; windows parse."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from toolkit import Consumer, Delivery, Envelope, InMemoryTransport
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
