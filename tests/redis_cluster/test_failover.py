"""Failovers under load on a cluster of its own: a master frozen (SIGSTOP) for 30 s, then
another shut down, while publishers send durably and consumers consume on every master.

No consumer crashes (those on healthy masters never stop), and every message whose
send was confirmed (``durable_replicas=1``: a replica holds it too) is handled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis.apps import Memory
from tests.redis.conftest import require_redis_server
from tests.redis.messages import ticket_create
from tests.redis_cluster.cluster import LocalCluster
from toolkit import Consumer, Dispatcher, Route, TransportError
from toolkit.channels.redis import ChannelOptions, RedisTransport

FREEZE = 30.0


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    require_redis_server()
    cluster = LocalCluster(Path(tmp_path_factory.mktemp("failover"))).start()
    yield cluster
    cluster.stop()


def dispatcher(handlers: Memory) -> Dispatcher:
    """ticket.create on any channel (no service map: the channels are picked by slot)."""
    return Dispatcher(
        "ticket_service", [Route("ticket.create", "command", dict, handlers.on_ticket_create)]
    )


def channels_on_every_master(cluster: LocalCluster, prefix: str) -> dict[int, str]:
    """One channel per master: master port -> channel."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < 3:
        name = f"fo{i}"
        found.setdefault(cluster.master_of(f"{prefix}:{{{name}}}").port, name)
        i += 1
    return found


async def test_frozen_and_stopped_masters_crash_no_consumer_and_lose_nothing_confirmed(
    own_cluster: LocalCluster,
) -> None:
    prefix = "fo"
    by_master = channels_on_every_master(own_cluster, prefix)
    channels = list(by_master.values())
    options = ChannelOptions(visibility_timeout=2.0, durable_replicas=1, durable_timeout_ms=500)
    publisher = RedisTransport(own_cluster.url, prefix=prefix, options=options)
    consuming = RedisTransport(own_cluster.url, prefix=prefix, options=options)
    handlers = {c: Memory() for c in channels}
    consumers = {
        c: Consumer(consuming, c, dispatcher(handlers[c]), batch_size=20, block_timeout=0.2)
        for c in channels
    }
    confirmed: dict[str, set[str]] = {c: set() for c in channels}
    unconfirmed = 0
    handled_at: dict[str, list[float]] = {c: [] for c in channels}
    stop = asyncio.Event()
    runs: dict[str, asyncio.Task[object]] = {}

    async def publish(channel: str) -> None:
        nonlocal unconfirmed
        n = 0
        while not stop.is_set():
            batch = [ticket_create(n + i) for i in range(10)]
            n += 10
            try:
                await publisher.send(channel, batch)
            except TransportError:
                unconfirmed += len(batch)
                await asyncio.sleep(0.2)
                continue
            confirmed[channel].update(e.headers.message_id for e in batch)
            await asyncio.sleep(0.05)

    async def watch(channel: str) -> None:
        seen = 0
        while not stop.is_set():
            if len(handlers[channel].deliveries) > seen:
                seen = len(handlers[channel].deliveries)
                handled_at[channel].append(time.monotonic())
            await asyncio.sleep(0.1)

    try:
        for c in channels:
            await consumers[c].subscription()
        runs.update({c: asyncio.create_task(consumers[c].run()) for c in channels})
        work = [asyncio.create_task(publish(c)) for c in channels]
        work += [asyncio.create_task(watch(c)) for c in channels]
        await asyncio.sleep(2)

        masters = list(by_master)
        frozen = next(n for n in own_cluster.nodes if n.port == masters[0])
        frozen.freeze()
        frozen_at = time.monotonic()
        await asyncio.sleep(FREEZE)
        frozen.thaw()
        await asyncio.to_thread(own_cluster.wait_ok, 60)
        # The consumers on the healthy masters went on all along.
        for port, channel in by_master.items():
            if port == masters[0]:
                continue
            during = [t for t in handled_at[channel] if frozen_at + 5 < t < frozen_at + FREEZE]
            assert during, f"{channel} on a healthy master stalled while another was frozen"

        stopped = next(n for n in own_cluster.nodes if n.port == masters[1])
        stopped.stop()
        await asyncio.sleep(8)
        stopped.start()
        await asyncio.to_thread(own_cluster.wait_ok, 60)
        await asyncio.sleep(2)
        stop.set()
        await asyncio.gather(*work)
        for c, run in runs.items():
            assert not run.done(), f"the consumer of {c} stopped: {run}"

        deadline = time.monotonic() + 30
        while any(not confirmed[c] <= set(handlers[c].ids) for c in channels):
            assert time.monotonic() < deadline, {
                c: len(confirmed[c] - set(handlers[c].ids)) for c in channels
            }
            await asyncio.sleep(0.2)
        for c in channels:
            consumers[c].stop()
        await asyncio.gather(*runs.values())
        print(
            f"confirmed {sum(map(len, confirmed.values()))}, unconfirmed {unconfirmed}, "
            f"handled {sum(len(h.ids) for h in handlers.values())}"
        )
    finally:
        stop.set()
        for consumer in consumers.values():
            consumer.stop()
        await asyncio.wait(list(runs.values()), timeout=20)
        for consumer in consumers.values():
            await consumer.close()
        await publisher.close()
        await consuming.close()
