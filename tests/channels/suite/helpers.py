"""Fixtures and helpers of the channel conformance suite (see ``tests/channels/conformance.py``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from toolkit import Consumer, DeadLetterStore, Envelope, Headers, Transport, new_message_id

AddRaw = Callable[[str, dict[str, Any]], Awaitable[None]]

#: the body size limit (max_message_bytes) the ``transport`` fixture is built with
MESSAGE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Features:
    """What a transport offers beyond the core promises; tests of what it lacks are skipped."""

    #: its subscriptions implement DelayedRetry (``retry_later``)
    delayed_retry: bool = True
    #: it implements DeadLetterStore (list, show, replay, purge)
    dead_letter_store: bool = True
    #: the ``add_raw`` fixture appends hand-written wire entries
    raw_entries: bool = True
    #: seconds after which a closed consumer's pending messages go to another consumer
    redelivery_wait: float = 0.0
    #: its subscriptions implement RenewsLeases: a message held past the visibility
    #: timeout goes to another consumer unless renewed
    leases: bool = True
    #: its subscriptions implement Deduplicates (seen / remember handled message ids)
    deduplication: bool = True
    #: it implements Schedules: messages held until their ``deliver_at`` time
    scheduling: bool = True
    #: the scheduled messages waiting can be listed, cancelled and replaced by id (False
    #: on RabbitMQ: they wait in the broker's TTL queues, which cannot be read back, and
    #: ``scheduled`` / ``cancel_scheduled`` raise ScheduledUnlistedError)
    lists_scheduled: bool = True
    #: a group made while other groups of the channel exist still receives what was
    #: sent before it (False on RabbitMQ: a queue receives from its creation on, and
    #: only the first group of a channel takes what was sent while there was none)
    late_groups_see_history: bool = True
    #: the broker pushes a consumer up to a batch ahead of its asking (AMQP prefetch):
    #: what it was pushed and has not received stays with it until it receives or closes
    pushes_ahead: bool = False
    #: it implements Prioritizes: a backlog hands out higher priorities first
    priorities: bool = True


def needs(available: bool, what: str) -> None:
    if not available:
        pytest.skip(f"the transport does not offer {what}")


@pytest.fixture
def redelivery_wait(features: Features) -> float:
    return features.redelivery_wait


@pytest.fixture
def store(transport: Transport, features: Features) -> DeadLetterStore:
    """The transport as a dead-letter store (the test is skipped when it is none)."""
    needs(features.dead_letter_store, "a dead-letter store")
    assert isinstance(transport, DeadLetterStore)
    return transport


@pytest.fixture
def write_raw(features: Features, request: pytest.FixtureRequest) -> AddRaw:
    """The transport's ``add_raw`` fixture (the test is skipped when it has none)."""
    needs(features.raw_entries, "hand-written wire entries")
    add_raw: AddRaw = request.getfixturevalue("add_raw")
    return add_raw


def envelope(key: str = "user.registered", body: bytes = b'{"n":1}', **headers: Any) -> Envelope:
    message_id = headers.pop("message_id", None)
    if message_id is None:
        message_id = new_message_id()
    # As the bus does: a message that starts a conversation is its own correlation.
    headers.setdefault("correlation_id", message_id)
    return Envelope(
        Headers(
            message_id=message_id,
            routing_key=key,
            kind=headers.pop("kind", "event"),
            source_service=headers.pop("source_service", "user_service"),
            timestamp_ms=headers.pop("timestamp_ms", int(time.time() * 1000)),
            **headers,
        ),
        body,
    )


def channel_name() -> str:
    return f"conf-{uuid.uuid4().hex[:8]}"


async def receive_all(sub: Any, count: int, timeout: float = 5.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(await sub.receive(count - len(got), 0.2))
    return got


async def drain(sub: Any, seconds: float) -> list[str]:
    """Receive and acknowledge for ``seconds``; the message ids received."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = await sub.receive(100, 0.1)
        await sub.ack(batch)
        seen.extend(d.message_id for d in batch)
    return seen


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Running:
    """A consumer running in a task until the test leaves the ``async with``."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Consumer:
        await self.consumer.subscription()
        self.task = asyncio.create_task(self.consumer.run())
        return self.consumer

    async def __aexit__(self, *exc: object) -> None:
        self.consumer.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)
        await self.consumer.close()
