"""Redis Cluster end to end: the example's channels on 3 masters against one server,
one hot channel in 8 shards against unsharded, and a failover under load.

    python -m bench.redis_cluster [--messages 30000] [--rounds 3]

Everything local and private, in one run: a 6-node cluster (3 masters, 3
replicas, ``tests/redis_cluster/cluster.py``; node timeout 2 s) and one ``redis-server``. A
producer (this process, ``transport.send`` of lists of 100, one task per
channel) and a consumer process (one subscription per channel,
``receive_acking`` of 100) per figure; throughput is messages / (last
acknowledgement - first send), the median of ``--rounds`` rounds. On a
machine with few cores the client processes, not Redis, are the limit: the
ratios say what the cluster costs or gains the client, not what it gains a
large deployment.

The failover: a publisher sends one batch of 10 every 10 ms with
``durable_replicas=1`` and a consumer reads, while the master of the channel is
shut down (and started again 5 s later: it rejoins as a replica); reported: the longest time publishers and the consumer saw no
progress, the confirmed messages never handled (lost: 0 expected), the
messages handled twice.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.redis.messages import ticket_create
from tests.redis.server import RedisServer
from tests.redis_cluster.cluster import LocalCluster
from toolkit.channels.redis import RedisTransport
from toolkit.channels.redis.shards import PARTITION_KEY
from toolkit.pipe_settings import PipeSettings
from toolkit.pipes import open_transport

EXAMPLE = ["user_events", "ticket_commands", "billing_events"]
GROUP = "bench"


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


async def _consume(url: str, prefix: str, channels: list[str], total: int, out: Any) -> None:
    transport = open_transport(url, PipeSettings(prefix=prefix))
    subs = [await transport.subscribe(c, GROUP, "c1") for c in channels]
    out.put("ready")
    seen = 0

    async def one(sub: Any) -> None:
        nonlocal seen
        acked: Any = []
        while seen < total:
            got = await sub.receive_acking(acked, 100, 0.2)
            seen += len(got)
            acked = got
        await sub.ack(acked)

    await asyncio.gather(*(one(s) for s in subs))
    out.put(time.time())
    for sub in subs:
        await sub.close()
    await transport.close()


def consume(url: str, prefix: str, channels: list[str], total: int, out: Any) -> None:
    asyncio.run(_consume(url, prefix, channels, total, out))


async def produce(url: str, prefix: str, channels: list[str], per_channel: int) -> None:
    transport = open_transport(url, PipeSettings(prefix=prefix))
    batches = [
        [ticket_create(i + j, metadata={PARTITION_KEY: f"k{(i + j) % 64}"}) for j in range(100)]
        for i in range(0, per_channel, 100)
    ]

    async def one(channel: str) -> None:
        for batch in batches:
            await transport.send(channel, batch)

    await asyncio.gather(*(one(c) for c in channels))
    await transport.close()


def end_to_end(url: str, channels: list[str], per_channel: int) -> float:
    """msg/s from the first send to the last acknowledgement."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    total = per_channel * len(channels)
    proc = ctx.Process(target=consume, args=(url, prefix, channels, total, out))
    proc.start()
    assert out.get(timeout=60) == "ready"
    started = time.time()
    asyncio.run(produce(url, prefix, channels, per_channel))
    ended = out.get(timeout=600)
    proc.join(30)
    return total / (ended - started)


def median_of(rounds: int, *args: Any) -> float:
    return statistics.median(end_to_end(*args) for _ in range(rounds))


async def failover(cluster: LocalCluster, durable: int, seconds: float = 12.0) -> dict[str, Any]:
    prefix = f"f{uuid.uuid4().hex[:8]}"
    url = with_query(cluster.url, f"durable={durable}")
    channel = "ticket_commands"
    publisher = open_transport(url, PipeSettings(prefix=prefix))
    consumer = open_transport(url, PipeSettings(prefix=prefix, visibility_timeout=2.0))
    assert isinstance(publisher, RedisTransport)
    sub = await consumer.subscribe(channel, GROUP, "c1")
    confirmed: set[str] = set()
    handled: list[str] = []
    sent_at: list[float] = []
    read_at: list[float] = []
    stop = asyncio.Event()

    async def publish() -> None:
        n = 0
        while not stop.is_set():
            batch = [ticket_create(n + i) for i in range(10)]
            n += 10
            try:
                await publisher.send(channel, batch)
            except Exception:
                await asyncio.sleep(0.05)
                continue
            confirmed.update(e.headers.message_id for e in batch)
            sent_at.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def read() -> None:
        acked: Any = []
        while not stop.is_set() or len(set(handled)) < len(confirmed):
            try:
                got = await sub.receive_acking(acked, 100, 0.2)
            except Exception:
                acked = []
                await asyncio.sleep(0.1)
                continue
            if got:
                read_at.append(time.monotonic())
            handled.extend(d.message_id for d in got)
            acked = got
            if stop.is_set() and not got and time.monotonic() > stopped_at + 20:
                break
        await sub.ack(acked)

    stopped_at = float("inf")
    tasks = [asyncio.create_task(publish()), asyncio.create_task(read())]
    await asyncio.sleep(2)
    victim = cluster.master_of(f"{prefix}:{{{channel}}}")
    victim.stop()
    killed = time.monotonic()
    # Back after 5 s: it rejoins as the replica of the promoted one (until then the
    # slot has no replica, and a durable send cannot be confirmed).
    await asyncio.sleep(5)
    victim.start()
    await asyncio.sleep(seconds - 5)
    stop.set()
    stopped_at = time.monotonic()
    await tasks[0]
    await asyncio.wait_for(tasks[1], 60)
    await asyncio.to_thread(cluster.wait_ok, 60)

    def longest_gap(times: list[float]) -> float:
        """The longest time without progress from the kill on (to the stop, if none)."""
        after = [t for t in times if killed < t <= stopped_at]
        points = [killed, *after] if after else [killed, stopped_at]
        return max(b - a for a, b in itertools.pairwise(points))

    await sub.close()
    await publisher.close()
    await consumer.close()
    return {
        "publishers_s": longest_gap(sent_at),
        "consumers_s": longest_gap(read_at),
        "confirmed": len(confirmed),
        "lost": len(confirmed - set(handled)),
        "duplicates": len(handled) - len(set(handled)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cluster = LocalCluster(folder / "cluster").start()
    single = RedisServer(folder / "single").start()
    try:
        per = args.messages // 3
        print(
            f"3-master cluster (+3 replicas) and one redis-server, {multiprocessing.cpu_count()} "
            f"CPUs, median of {args.rounds} rounds"
        )
        one = median_of(args.rounds, single.url, EXAMPLE, per)
        many = median_of(args.rounds, cluster.url, EXAMPLE, per)
        print(f"\nthe example's 3 channels, {args.messages:,} messages, end to end, msg/s:")
        print(f"  one redis-server                 {one:10,.0f}    1.00x")
        print(f"  3-master cluster                 {many:10,.0f}    {many / one:.2f}x")
        hot = median_of(args.rounds, cluster.url, ["orders"], args.messages)
        sharded = median_of(
            args.rounds, with_query(cluster.url, "shards=orders:8"), ["orders"], args.messages
        )
        hot_single = median_of(args.rounds, single.url, ["orders"], args.messages)
        print(f"\none hot channel, {args.messages:,} messages, end to end, msg/s:")
        print(f"  unsharded, one redis-server      {hot_single:10,.0f}    1.00x")
        print(f"  unsharded, cluster               {hot:10,.0f}    {hot / hot_single:.2f}x")
        print(
            f"  8 shards, cluster                {sharded:10,.0f}    {sharded / hot_single:.2f}x"
            f"  ({sharded / hot:.2f}x unsharded on the cluster)"
        )
        print("\na master shut down under load (one batch of 10 every 10 ms):")
        for durable in (1, 0):
            r = asyncio.run(failover(cluster, durable))
            print(
                f"  durable_replicas={durable}: no progress for publishers "
                f"{r['publishers_s']:.1f} s, consumers {r['consumers_s']:.1f} s; "
                f"{r['confirmed']:,} confirmed, {r['lost']} lost, {r['duplicates']} duplicates"
            )
    finally:
        cluster.stop()
        single.stop()


if __name__ == "__main__":
    main()
