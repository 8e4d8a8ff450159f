"""The Redis Streams transport on a Redis Cluster (3 masters, 3 replicas) against the
shared channel behaviour suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT, Features
from tests.redis_cluster.cluster import LocalCluster
from tests.redis_cluster.conftest import redis_cluster  # noqa: F401
from toolkit.channels.redis import ChannelOptions, RedisTransport

VISIBILITY = 0.5


@pytest.fixture
async def transport(redis_cluster: LocalCluster) -> AsyncIterator[RedisTransport]:  # noqa: F811
    t = RedisTransport(
        redis_cluster.url,
        prefix=f"conf{uuid.uuid4().hex[:8]}",
        options=ChannelOptions(visibility_timeout=VISIBILITY, max_message_bytes=MESSAGE_LIMIT),
    )
    await t.check()
    assert t.cluster is not None
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
