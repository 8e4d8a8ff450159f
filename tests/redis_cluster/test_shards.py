"""Sharded channels: a channel split over 8 streams, on the cluster and on one server.

Order is kept per partition key, every shard is read by each group, and the
streams spread over the masters of a cluster; the dead letters, status and groups
of a channel cover its shards there too.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest

from tests.redis.conftest import redis_server  # noqa: F401
from tests.redis.messages import ticket_create
from tests.redis.server import RedisServer
from tests.redis.test_sharded_operations import (
    CHANNEL,
    GROUP,
    dead_letter_on_every_shard,
    sharded,
)
from tests.redis.test_sharded_operations import SHARDS as OPS_SHARDS
from tests.redis_cluster.cluster import LocalCluster
from toolkit.channels.redis import RedisTransport
from toolkit.channels.redis.connection import node_of_slot
from toolkit.channels.redis.shards import PARTITION_KEY, ShardedSubscription, shard_name
from toolkit.pipe_settings import PipeSettings
from toolkit.pipes import open_transport

SHARDS = 8
KEYS = 24
MESSAGES = 1200


@pytest.fixture(params=["cluster", "single"])
def url(
    request: pytest.FixtureRequest,
    redis_cluster: LocalCluster,
    redis_server: RedisServer,  # noqa: F811
) -> str:
    base = redis_cluster.url if request.param == "cluster" else redis_server.url
    return f"{base}{'&' if '?' in base else '?'}shards=orders:{SHARDS}"


async def test_a_sharded_channel_keeps_order_per_key_and_every_group_reads_every_shard(
    url: str,
) -> None:
    prefix = f"sh{uuid.uuid4().hex[:8]}"
    transport = open_transport(url, PipeSettings(prefix=prefix))
    assert isinstance(transport, RedisTransport)
    try:
        subs = [await transport.subscribe("orders", g, "c1") for g in ("billing", "audit")]
        assert all(isinstance(s, ShardedSubscription) for s in subs)
        sent: dict[str, list[str]] = defaultdict(list)
        batch = []
        for i in range(MESSAGES):
            key = f"customer-{i % KEYS}"
            envelope = ticket_create(i, metadata={PARTITION_KEY: key})
            sent[key].append(envelope.headers.message_id)
            batch.append(envelope)
            if len(batch) == 50:
                await transport.send("orders", batch)
                batch = []
        lengths = [
            await transport.redis.xlen(transport.keys(shard_name("orders", i)).stream)
            for i in range(SHARDS)
        ]
        assert sum(lengths) == MESSAGES
        assert sum(1 for n in lengths if n) >= SHARDS // 2, lengths
        if transport.cluster is not None:
            masters = {
                transport.cluster.get_node_from_key(
                    transport.keys(shard_name("orders", i)).stream
                ).name
                for i in range(SHARDS)
            }
            assert len(masters) >= 2
        for sub in subs:
            got: dict[str, list[str]] = defaultdict(list)
            total = 0
            while total < MESSAGES:
                deliveries = await sub.receive(100, 1.0)
                assert deliveries, f"{total} of {MESSAGES} read"
                for d in deliveries:
                    got[d.envelope.headers.metadata[PARTITION_KEY]].append(d.message_id)
                    assert d.channel == "orders"
                total += len(deliveries)
                await sub.ack(deliveries)
            assert got == sent
            assert not await sub.receive(100, 0.1)
            await sub.close()
        status = await transport.groups("orders")
        assert [g.name for g in status] == ["audit", "billing"]
        assert "orders" in await transport.stream_channels()
        assert "orders#1" not in await transport.stream_channels()
    finally:
        await transport.close()


async def test_the_operations_tools_cover_every_shard_on_the_cluster(
    redis_cluster: LocalCluster,
) -> None:
    """Dead letters, status and groups of a channel whose shards are on several masters
    (each shard's dead letters, bands and groups in a slot of its own)."""
    prefix = f"sh{uuid.uuid4().hex[:8]}"
    transport = sharded(redis_cluster.url, prefix)
    try:
        assert transport.cluster is not None
        nodes = {
            (await node_of_slot(transport.cluster, transport._slot(shard_name(CHANNEL, i)))).name
            for i in range(OPS_SHARDS)
        }
        assert len(nodes) > 1
        shard_of = await dead_letter_on_every_shard(transport)
        letters = await transport.dead_letters(CHANNEL)
        assert {d.envelope.headers.message_id for d in letters if d.envelope} == set(shard_of)
        ids = [d.dead_letter_id for d in letters]
        assert all([await transport.dead_letter(CHANNEL, i) for i in ids])
        assert await transport.replay(CHANNEL, ids[:4]) == 4
        assert await transport.purge(CHANNEL) == 4
        status = await transport.status(CHANNEL)
        assert (status.length, status.dead_letters) == (12, 0)
        [group] = status.groups
        assert (group.name, group.lag, group.pending) == (GROUP, 4, 0)
        assert await transport.remove_group(CHANNEL, GROUP) is True
        assert await transport.groups(CHANNEL) == []
        assert (await transport.status(CHANNEL)).groups == []
    finally:
        await transport.close()
