"""The Redis Streams transport on a Redis Cluster (3 masters, 3 replicas) against the
shared channel behaviour suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT
from tests.channels.test_redis import VISIBILITY, add_raw, features  # noqa: F401
from tests.redis_cluster.cluster import LocalCluster
from tests.redis_cluster.conftest import redis_cluster  # noqa: F401
from toolkit.channels.redis import ChannelOptions, RedisTransport


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
