"""Fixtures for tests against a real Redis: a private redis-server per test session.

Skipped when no ``redis-server`` is on PATH, except under ``CI=true``, where
that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.redis.server import RedisServer, redis_server_path
from toolkit.channels.redis import ChannelOptions, RedisTransport


def require_redis_server() -> None:
    if redis_server_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not on PATH, and CI=true: Redis tests must run in CI")
        pytest.skip("redis-server is not on PATH")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own per test: tests share the server, never keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def make_transport(redis_url: str, prefix: str) -> AsyncIterator[object]:
    made: list[RedisTransport] = []

    def make(**options: object) -> RedisTransport:
        transport = RedisTransport(
            redis_url,
            prefix=prefix,
            options=ChannelOptions(**options),  # type: ignore[arg-type]
        )
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
