"""The Redis transport on a local Redis Cluster: sends spread over the masters, durable
sends, the command line against a cluster URL (and one that cannot be reached)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from tests.redis.messages import ticket_create
from tests.redis_cluster.cluster import LocalCluster
from toolkit import TransportError
from toolkit.channels.redis import ChannelOptions, RedisTransport
from toolkit.channels.redis.connection import node_of_slot
from toolkit.pipe_settings import cluster_nodes, redact

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def toolkit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cluster_urls() -> None:
    assert cluster_nodes("redis://h:1/0") is None
    assert cluster_nodes("redis+cluster://a:1,b:2") == [("a", 1), ("b", 2)]
    assert cluster_nodes("redis://u:pw@a:7000?cluster=true") == [("a", 7000)]
    assert cluster_nodes("rediss+cluster://a") == [("a", 6379)]
    assert redact("redis+cluster://u:pw@a:1,b:2") == "redis+cluster://u:***@a:1,b:2"


async def test_sends_to_channels_on_every_master_in_one_round(
    redis_cluster: LocalCluster,
) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}"
    transport = RedisTransport(redis_cluster.url, prefix=prefix)
    try:
        channels = [f"chan{i}" for i in range(12)]
        assert transport.cluster is not None
        await transport.check()
        nodes = set()
        for channel in channels:
            slot = transport.cluster.keyslot(transport.keys(channel).stream)
            nodes.add((await node_of_slot(transport.cluster, slot)).name)
        assert len(nodes) == 3
        await asyncio.gather(
            *(
                transport.send(c, [ticket_create(i) for i in range(5)])
                for c in channels
                for _ in "ab"
            )
        )
        for channel in channels:
            sub = await transport.subscribe(channel, "g", "c1")
            got = await sub.receive(100, 0.1)
            assert len(got) == 10
            await sub.ack(got)
            await sub.close()
    finally:
        await transport.close()


async def test_durable_send_waits_for_a_replica(redis_cluster: LocalCluster) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}"
    durable = RedisTransport(
        redis_cluster.url, prefix=prefix, options=ChannelOptions(durable_replicas=1)
    )
    too_many = RedisTransport(
        redis_cluster.url,
        prefix=prefix,
        options=ChannelOptions(durable_replicas=3, durable_timeout_ms=50),
    )
    try:
        await asyncio.gather(*(durable.send(f"d{i}", [ticket_create(i)]) for i in range(6)))
        with pytest.raises(TransportError, match="not confirmed by 3 replica"):
            await too_many.send("d0", [ticket_create(9)])
    finally:
        await durable.close()
        await too_many.close()


def test_sync_sends_on_a_cluster(redis_cluster: LocalCluster) -> None:
    from toolkit.channels.redis import SyncRedisTransport

    prefix = f"s{uuid.uuid4().hex[:8]}"
    for options in (ChannelOptions(), ChannelOptions(durable_replicas=1)):
        transport = SyncRedisTransport(redis_cluster.url, prefix=prefix, options=options)
        try:
            transport.check()
            for i in range(6):
                transport.send_sync(f"s{i}", [ticket_create(i)])
        finally:
            transport.close()


def test_the_command_line_works_against_the_cluster(redis_cluster: LocalCluster) -> None:
    prefix = f"k{uuid.uuid4().hex[:8]}"

    async def send() -> None:
        transport = RedisTransport(redis_cluster.url, prefix=prefix)
        await transport.send("ticket_commands", [ticket_create(1)])
        await transport.ensure_group("ticket_commands", "ticket_service")
        await transport.close()

    asyncio.run(send())
    common = ("--url", redis_cluster.url, "--prefix", prefix)
    for args in (
        ("status", *common),
        ("groups", "list", *common),
        ("dlq", "list", "ticket_commands", *common),
        ("pipes", "--check", *common),
    ):
        done = toolkit(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    done = toolkit("status", *common)
    assert "ticket_commands" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("groups", "list"),
        ("dlq", "list", "ticket_commands"),
        ("pipes", "--check"),
        ("run", "ticket_service", "--app", "tests.redis.apps:Memory"),
    ],
)
def test_an_unreachable_cluster_is_a_clean_exit_2(args: tuple[str, ...]) -> None:
    done = toolkit(*args, "--url", "redis+cluster://127.0.0.1:1,127.0.0.1:2")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot reach Redis" in done.stderr + done.stdout


async def test_a_failing_close_does_not_hide_the_error_that_stopped_the_runner(
    redis_cluster: LocalCluster,
) -> None:
    """The handler's error stops the runner; closing then fails too (the stream is no
    longer a stream): the runner raises the handler's error, not the close's."""
    import generated.ticket_service as ticket_service
    from tests.redis.apps import Memory
    from toolkit import Runner
    from toolkit.channels.redis.connection import sync_cluster_client

    prefix = f"r{uuid.uuid4().hex[:8]}"
    transport = RedisTransport(redis_cluster.url, prefix=prefix)
    stream = transport.keys("ticket_commands").stream

    class Stop(BaseException):
        pass

    def behaviour(message: object, meta: object) -> None:
        client = sync_cluster_client(redis_cluster.url)
        client.delete(stream)
        client.set(stream, "not a stream")
        client.close()
        raise Stop("the handler's error")

    try:
        await transport.send("ticket_commands", [ticket_create(1)])
        runner = Runner(transport, "ticket_commands", ticket_service.bind(Memory(behaviour)))
        with pytest.raises(Stop, match="the handler's error"):
            await runner.run()
    finally:
        await transport.close()


async def test_a_manual_failover_is_followed_by_sends_and_reads(
    redis_cluster: LocalCluster,
) -> None:
    """The replica of a channel's master takes over (CLUSTER FAILOVER): the held
    connections get MOVED from the old master and follow the slot to the new one."""
    prefix = f"m{uuid.uuid4().hex[:8]}"
    transport = RedisTransport(redis_cluster.url, prefix=prefix)
    try:
        stream = transport.keys("moving").stream
        sub = await transport.subscribe("moving", "g", "c1")
        await transport.send("moving", [ticket_create(0)])
        first = await sub.receive(10, 1.0)
        assert len(first) == 1
        old = redis_cluster.master_of(stream)
        client = old.client()
        try:
            replica_port = next(
                int(r["port"]) for r in client.info("replication").values() if isinstance(r, dict)
            )
        finally:
            client.close()
        replica = next(n for n in redis_cluster.nodes if n.port == replica_port)
        promote = replica.client()
        try:
            promote.execute_command("CLUSTER", "FAILOVER")
        finally:
            promote.close()
        deadline = asyncio.get_running_loop().time() + 20
        while redis_cluster.master_of(stream).port != replica_port:
            assert asyncio.get_running_loop().time() < deadline, "no failover"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(redis_cluster.wait_ok)
        await transport.send("moving", [ticket_create(1)])
        got = await sub.receive_acking(first, 10, 1.0)
        assert len(got) == 1
        await sub.ack(got)
        assert await transport.pending_count("moving", "g") == 0
        await sub.close()
    finally:
        await transport.close()


async def test_the_cluster_true_form_and_the_pipe_options(redis_cluster: LocalCluster) -> None:
    from toolkit.pipe_settings import BindingError, PipeSettings
    from toolkit.pipes import open_transport

    node = redis_cluster.nodes[0]
    url = f"redis://127.0.0.1:{node.port}?cluster=true&durable=1&shards=orders:4"
    transport = open_transport(url, PipeSettings(prefix=f"o{uuid.uuid4().hex[:8]}"))
    assert isinstance(transport, RedisTransport)
    try:
        await transport.check()
        assert transport.cluster is not None
        assert transport.options("orders").shards == 4
        assert transport.options("orders").durable_replicas == 1
        assert transport.options("other").shards == 1
        await transport.send("orders", [ticket_create(i) for i in range(20)])
    finally:
        await transport.close()
    for bad in ("shards=orders", "shards=orders:x", "durable=yes"):
        with pytest.raises(BindingError):
            open_transport(f"redis://127.0.0.1:{node.port}?{bad}")
