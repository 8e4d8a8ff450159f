"""Fixtures of the outbox tests: the shared PostgreSQL (a schema of its own per test, which is
also the outbox's prefix), SQLite files in tmp_path, and a private Redis for the channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.postgres.conftest import postgres_url, schema
from tests.redis.conftest import prefix, redis_server, redis_url
from toolkit.channels.redis import RedisTransport
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes

__all__ = ["postgres_url", "prefix", "redis_server", "redis_url", "schema"]


@pytest.fixture
async def pipes(redis_url: str, prefix: str) -> AsyncIterator[Pipes]:
    """Every channel on the private Redis, under the test's own key prefix."""
    made = Pipes(Bindings(pipes={"default": redis_url}), PipeSettings(prefix=prefix))
    yield made
    await made.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


async def stream_ids(redis_url: str, prefix: str, channel: str) -> list[str]:
    """The message ids on ``channel`` in stream order (a fresh group reads from the start)."""
    transport = RedisTransport(redis_url, prefix=prefix)
    try:
        sub = await transport.subscribe(channel, "reader", "r")
        ids: list[str] = []
        while batch := await sub.receive(1000, 0.05):
            ids.extend(d.message_id for d in batch)
            await sub.ack(batch)
        return ids
    finally:
        await transport.close()
