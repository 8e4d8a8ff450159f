"""The Redis Streams transport against the shared channel behaviour suite (private redis-server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT, Features
from tests.redis.server import RedisServer, redis_server_path
from toolkit.channels.redis import ChannelOptions, RedisTransport

VISIBILITY = 0.5


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if redis_server_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not on PATH, and CI=true: Redis tests must run in CI")
        pytest.skip("redis-server is not on PATH")
    server = RedisServer(tmp_path_factory.mktemp("redis-conformance")).start()
    yield server
    server.stop()


@pytest.fixture
async def transport(redis_server: RedisServer) -> AsyncIterator[RedisTransport]:
    t = RedisTransport(
        redis_server.url,
        prefix=f"conf{uuid.uuid4().hex[:8]}",
        options=ChannelOptions(visibility_timeout=VISIBILITY, max_message_bytes=MESSAGE_LIMIT),
    )
    await t.check()
    yield t
    await t.close()


@pytest.fixture
def add_raw(transport: RedisTransport) -> Any:
    async def add(channel: str, fields: dict[str, Any]) -> None:
        await transport.add_raw(channel, fields)

    return add


@pytest.fixture
def features() -> Features:
    return Features(redelivery_wait=VISIBILITY + 0.1)
