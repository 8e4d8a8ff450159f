"""End-to-end Redis Streams benchmark: producer process -> Redis -> consumer process -> handler -> XACK.

    python bench/redis_e2e.py [--messages 200000] [--faststream-messages 20000]

One run, side by side, on a private redis-server (free port, no persistence):

* ours: ``DistributedBus.publish_events`` in batches of 100 (one pipelined
  round trip per batch, like (a)); the paced latency run uses the generated
  ``UserServicePublisher.publish_user_registered`` one message at a time
  -> ``toolkit`` Runner of ticket_service with its generated ``bind()``
  (envelope parsing, routing, typed msgspec decode into the consumer's own
  view class, handler, batched XACK);
* (a) a hand-written redis-py loop: pipelined XADD in batches of 100 of one
  JSON field, XREADGROUP COUNT 100, msgspec decode, one XACK per batch;
* (b) FastStream 0.7: ``RedisBroker.publish(stream=...)`` -> a stream
  subscriber with a consumer group (``pip install "faststream[redis]>=0.7,<0.8"``,
  the ``bench`` extra; skipped with a note when missing).

Throughput is messages / (last acknowledgement - first publish). Latency is
publish -> handler for ours and (a) at a fixed moderate rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STREAM = "user_events"  # ours: the generated channel; others: their own stream keys
GROUP = "ticket_service"
LATENCY_RATE = 2_000  # msg/s
LATENCY_SECONDS = 2.0


class Event(msgspec.Struct):
    """The hand-written loop's and FastStream's message: user.registered's fields."""

    user_id: uuid.UUID
    email: str
    full_name: str


def event_payload(i: int) -> dict[str, Any]:
    return {
        "user_id": str(uuid.uuid4()),
        "email": f"user{i}@example.com",
        "full_name": f"User {i}",
        "registered_at": "2026-01-01T12:00:00+00:00",
    }


# -- ours --------------------------------------------------------------------------------


async def ours_produce(url: str, n: int, rate: float | None) -> None:
    from generated.user_service import UserRegistered, UserServicePublisher
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(url, prefix="ours")
    publisher = UserServicePublisher(transport)
    events = [msgspec.convert(event_payload(i), UserRegistered) for i in range(min(n, 1000))]
    if rate is None:
        # Batches of 100, as the hand-written loop pipelines its XADDs: one round trip each.
        bus = publisher.bus
        for start in range(0, n, 100):
            await bus.publish_events(
                "user.registered",
                [events[i % len(events)] for i in range(start, min(start + 100, n))],
            )
    else:
        await _paced(
            n,
            rate,
            lambda i: publisher.publish_user_registered(
                events[i % len(events)], metadata={"sent_ns": str(time.time_ns())}
            ),
        )
    await transport.close()


async def ours_consume(url: str, n: int, latency: bool) -> dict[str, Any]:
    import generated.ticket_service as ticket_service
    from toolkit import Runner, RunOptions
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(url, prefix="ours")
    seen: list[int] = []

    class Handlers:
        def on_user_registered(self, message: Any, meta: Any) -> None:
            if latency:
                seen.append(time.time_ns() - int(meta.metadata["sent_ns"]))

        def on_user_billing_changed(self, message: Any, meta: Any) -> None:
            pass

        def on_ticket_create(self, message: Any, meta: Any) -> None:
            pass

    runner = Runner(
        transport, STREAM, ticket_service.bind(Handlers()), RunOptions(limit=n, batch_size=100)
    )
    await runner.consumer.subscription()
    _ready()
    await runner.run()
    end = time.time()
    await transport.close()
    return {"end": end, "latencies": seen}


# -- (a) hand-written redis-py loop ------------------------------------------------------


async def raw_produce(url: str, n: int, rate: float | None) -> None:
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    encode = msgspec.json.encode
    payloads = [event_payload(i) for i in range(min(n, 1000))]
    if rate is None:
        for start in range(0, n, 100):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 100, n)):
                pipe.xadd("raw", {"data": encode(payloads[i % len(payloads)])})
            await pipe.execute()
    else:

        async def one(i: int) -> None:
            await client.xadd(
                "raw", {"data": encode(payloads[i % len(payloads)]), "sent_ns": time.time_ns()}
            )

        await _paced(n, rate, one)
    await client.aclose()


async def raw_consume(url: str, n: int, latency: bool) -> dict[str, Any]:
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP
        await client.xgroup_create("raw", GROUP, "0", mkstream=True)
    decode = msgspec.json.Decoder(Event).decode
    seen: list[int] = []
    handled = 0

    def handler(event: Event) -> None:
        pass

    _ready()
    while handled < n:
        reply: Any = await client.xreadgroup(GROUP, "c1", {"raw": ">"}, count=100, block=1000)
        if not reply:
            continue
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        ids: list[bytes] = []
        for entry_id, fields in entries:
            handler(decode(fields[b"data"]))
            if latency:
                seen.append(time.time_ns() - int(fields[b"sent_ns"]))
            ids.append(entry_id)
        await client.xack("raw", GROUP, *ids)
        handled += len(ids)
    end = time.time()
    await client.aclose()
    return {"end": end, "latencies": seen}


# -- (b) FastStream ----------------------------------------------------------------------


async def faststream_produce(url: str, n: int, rate: float | None) -> None:
    from faststream.redis import RedisBroker

    broker = RedisBroker(url)
    await broker.connect()
    payloads = [event_payload(i) for i in range(min(n, 1000))]
    for start in range(0, n, 100):
        await asyncio.gather(
            *(
                broker.publish(payloads[i % len(payloads)], stream="faststream")
                for i in range(start, min(start + 100, n))
            )
        )
    await broker.stop()


async def faststream_consume(url: str, n: int, latency: bool) -> dict[str, Any]:
    from faststream.redis import RedisBroker, StreamSub
    from pydantic import BaseModel

    class PydanticEvent(BaseModel):  # FastStream validates with pydantic
        user_id: uuid.UUID
        email: str
        full_name: str

    quiet: dict[str, Any] = {"logger": None}  # no log line per message
    broker = RedisBroker(url, **quiet)
    done = asyncio.Event()
    count = 0

    @broker.subscriber(stream=StreamSub("faststream", group=GROUP, consumer="c1"))
    async def handle(event: PydanticEvent) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    await broker.start()
    _ready()
    await done.wait()
    end = time.time()
    await asyncio.sleep(0.2)  # let the last acknowledgement go out
    await broker.stop()
    return {"end": end, "latencies": []}


# -- plumbing ----------------------------------------------------------------------------


async def _paced(n: int, rate: float, publish: Any) -> None:
    """``rate`` messages per second in 5 ms ticks, each message stamped when it is sent."""
    tick = 0.005
    per_tick = max(1, int(rate * tick))
    start = time.monotonic()
    sent = 0
    while sent < n:
        count = min(per_tick, n - sent)
        await asyncio.gather(*(publish(sent + i) for i in range(count)))
        sent += count
        wait = start + (sent / rate) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


def _ready() -> None:
    print("READY", flush=True)


ROLES = {
    "ours": (ours_produce, ours_consume),
    "raw": (raw_produce, raw_consume),
    "faststream": (faststream_produce, faststream_consume),
}


def child(role: str, side: str, url: str, n: int, rate: float | None) -> None:
    produce, consume = ROLES[role]
    if side == "produce":
        start = time.time()
        asyncio.run(produce(url, n, rate))
        print(json.dumps({"start": start}), flush=True)
    else:
        result = asyncio.run(consume(url, n, rate is not None))
        print(json.dumps(result), flush=True)


def run_pair(role: str, url: str, n: int, rate: float | None) -> dict[str, Any]:
    base = [sys.executable, __file__, "--child", role, "--url", url, "--messages", str(n)]
    if rate is not None:
        base += ["--rate", str(rate)]
    consumer = subprocess.Popen([*base, "--side", "consume"], stdout=subprocess.PIPE, text=True)
    assert consumer.stdout is not None
    line = consumer.stdout.readline()
    while line and line.strip() != "READY":  # FastStream logs to stdout
        line = consumer.stdout.readline()
    if not line:
        consumer.kill()
        raise RuntimeError(f"{role} consumer did not start")
    try:
        producer = subprocess.run(
            [*base, "--side", "produce"], stdout=subprocess.PIPE, text=True, check=True, timeout=300
        )
        started = json.loads(producer.stdout.strip().splitlines()[-1])["start"]
        out, _ = consumer.communicate(timeout=300)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    result = json.loads(out.strip().splitlines()[-1])
    elapsed = result["end"] - started
    latencies = sorted(result["latencies"])
    summary: dict[str, Any] = {"elapsed": elapsed, "rate": n / elapsed}
    if latencies:
        summary["p50_ms"] = statistics.median(latencies) / 1e6
        summary["p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] / 1e6
    return summary


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    client.close()
    return process, f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def private_redis(prefix: str) -> Iterator[str]:
    """A redis-server of our own for the benchmark's lifetime; its URL."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    server, url = start_redis(folder)
    try:
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--faststream-messages", type=int, default=20_000)
    parser.add_argument("--child")
    parser.add_argument("--side")
    parser.add_argument("--url")
    parser.add_argument("--rate", type=float)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.side, args.url, args.messages, args.rate)
        return

    with private_redis("bench-redis-") as url:
        results: dict[str, dict[str, Any]] = {}
        try:
            import faststream  # noqa: F401

            roles = ["raw", "ours", "faststream"]
        except ImportError:
            roles = ["raw", "ours"]
            print('FastStream not installed (pip install "faststream[redis]>=0.7,<0.8"): skipped')
        print(f"redis-server {url}, {os.cpu_count()} CPUs, small event (user.registered)\n")
        for role in roles:
            n = args.faststream_messages if role == "faststream" else args.messages
            flush(url)
            results[role] = run_pair(role, url, n, None)
            print(
                f"  {role:<11} {n:>8} msgs in {results[role]['elapsed']:6.2f}s: {results[role]['rate']:>9,.0f} msg/s"
            )
        ours = results["ours"]["rate"]
        print()
        print(f"ours / hand-written redis-py loop: {ours / results['raw']['rate']:.2f}x")
        if "faststream" in results:
            print(f"ours / FastStream 0.7:             {ours / results['faststream']['rate']:.1f}x")
        print(
            f"\nlatency, publish -> handler, at {LATENCY_RATE:,} msg/s for {LATENCY_SECONDS:.0f}s:"
        )
        for role in ("ours", "raw"):
            flush(url)
            lat = run_pair(role, url, int(LATENCY_RATE * LATENCY_SECONDS), LATENCY_RATE)
            print(f"  {role:<11} p50 {lat['p50_ms']:6.2f} ms   p99 {lat['p99_ms']:6.2f} ms")


if __name__ == "__main__":
    main()
