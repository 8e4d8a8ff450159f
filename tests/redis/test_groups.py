"""Housekeeping of a channel's groups: consumers that went away without leaving,
safe trimming from `toolkit run`, and retired groups (`toolkit groups`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer
from toolkit.channels.redis import RedisTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    yield c
    c.close()


def consumer_names(client: redis.Redis, stream: str, group: str = GROUP) -> set[str]:
    return {c["name"] for c in client.xinfo_consumers(stream, group)}


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_consumers_gone_without_leaving_are_forgotten_once_they_own_nothing(
    make_transport: Any, client: redis.Redis
) -> None:
    # Consumers that stopped without closing their subscription (as after SIGKILL).
    ghosts: RedisTransport = make_transport(idle_consumer_timeout=None)
    stream = ghosts.keys(CHANNEL).stream
    await ghosts.send(CHANNEL, [ticket_create(i) for i in range(3)])
    for name in ("ghost-acked", "ghost-caller"):
        sub = await ghosts.subscribe(CHANNEL, GROUP, name)
        await sub.ack(await sub.receive(1, 1))
    held = await ghosts.subscribe(CHANNEL, GROUP, "ghost-held")
    [kept] = await held.receive(1, 1)  # never acknowledged: pending
    await asyncio.sleep(0.35)

    forgotten = await ghosts.forget_idle_consumers(CHANNEL, GROUP, idle=0.3, keep="ghost-caller")
    # Neither the caller nor one with a pending message.
    assert forgotten == ["ghost-acked"]
    assert consumer_names(client, stream) == {"ghost-held", "ghost-caller"}

    # A running consumer does it on its own: the held message is reclaimed
    # after the visibility timeout, then its owner owns nothing and goes too.
    handlers = Memory()
    live = Consumer(
        make_transport(idle_consumer_timeout=0.3, visibility_timeout=0.5),
        CHANNEL,
        ticket_service.bind(handlers),
        consumer_name="live",
    )
    task = asyncio.create_task(live.run())
    await wait_for(lambda: consumer_names(client, stream) == {"live"}, timeout=5)
    assert handlers.ids == [kept.message_id]
    await asyncio.sleep(0.5)  # idle past the limit, but it is the one looking
    assert consumer_names(client, stream) == {"live"}
    live.stop()
    await task
    await live.close()
