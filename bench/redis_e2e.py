"""Redis Streams end to end, through what users run, beside the fastest loop a user could write.

    python -m bench.redis_e2e [--messages 60000] [--rounds 3]

Everything on one private redis-server (free port, no persistence), in one run;
each figure is the median of ``--rounds`` rounds, each ratio is taken in this
run. Producer and consumer are separate processes.

References, written by hand:

* **sync**: redis-py's synchronous client (hiredis): the producer pipelines
  ``XADD`` x100 of one JSON field; the consumer reads ``XREADGROUP COUNT
  100``, decodes each with msgspec, calls a handler and sends one ``XACK``
  per batch. The fastest loop a user could write; the one to beat.
* **async**: the same loop on ``redis.asyncio``.
* **FastStream 0.7**: ``RedisBroker.publish(stream=...)`` -> a stream
  subscriber in a consumer group (the peer a user would pick instead).

Ours, the consumer always ``toolkit run ticket_service --channel user_events
--app bench.redis_e2e:APP`` (a real child process: the generated ``bind()``,
envelope parsing, routing, typed decode, handler, batched ``XACK``):

* **batched**: ``bus.publish_events`` in lists of 100;
* **64 tasks**: 64 tasks each awaiting one generated ``publish_user_registered``
  at a time (a web application under load);
* **one at a time**: one awaited ``publish_user_registered`` at a time; also
  measured alone (no consumer) beside one awaited ``redis.asyncio`` ``XADD`` at
  a time, and beside the loopback round trip of ``redis-benchmark -P 1``.

Then the consumer's CPU per message (user + system time of the process over a
prefilled stream, less that of a run over an empty one) for ``toolkit run``
and the sync consumer, and publish -> handler latency at a paced 2,000 msg/s.

Throughput is messages / (last acknowledgement - first publish).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from toolkit.app import App, HostContext  # noqa: E402
from toolkit.dispatcher import Dispatcher  # noqa: E402

PREFIX = "ours"
CHANNEL = "user_events"
OURS_STREAM = f"{PREFIX}:{{{CHANNEL}}}"
GROUP = "ticket_service"
BATCH = 100
TASKS = 64
LATENCY_RATE = 2_000  # msg/s
LATENCY_SECONDS = 2.0


class Event(msgspec.Struct):
    """The hand-written loop's and FastStream's message: user.registered's fields."""

    user_id: uuid.UUID
    email: str
    full_name: str
    registered_at: str
    plan: str = "free"
    referrer: str | None = None


def encoded_payloads(n: int) -> list[bytes]:
    """The hand-written loops' messages: up to 1,000 distinct JSON bodies, reused in turn."""
    return [msgspec.json.encode(event_payload(i)) for i in range(min(n, 1000))]


def xadd_batch(client: Any, payloads: list[bytes], first: int, n: int) -> Any:
    """A pipeline (sync or asyncio client) of the XADDs of messages ``first`` to
    ``first + BATCH`` (at most ``n``), ready to execute."""
    pipe = client.pipeline(transaction=False)
    for i in range(first, min(first + BATCH, n)):
        pipe.xadd("raw", {"data": payloads[i % len(payloads)]})
    return pipe


def event_payload(i: int) -> dict[str, Any]:
    return {
        "user_id": str(uuid.uuid4()),
        "email": f"user{i}@example.com",
        "full_name": f"User {i}",
        "registered_at": "2026-01-01T12:00:00+00:00",
    }


# -- ours --------------------------------------------------------------------------------


class OursHandlers:
    """ticket_service's handlers for ``toolkit run``: no-ops, or latency stamps."""

    def __init__(self, latency: bool) -> None:
        self.latency = latency
        self.seen: list[int] = []

    def on_user_registered(self, message: Any, meta: Any) -> None:
        if self.latency:
            self.seen.append(time.time_ns() - int(meta.metadata["sent_ns"]))

    def on_user_billing_changed(self, message: Any, meta: Any) -> None:
        pass

    def on_ticket_create(self, message: Any, meta: Any) -> None:
        pass


@contextlib.asynccontextmanager
async def _ours(ctx: HostContext[None]) -> AsyncIterator[Dispatcher]:
    import generated.ticket_service as ticket_service

    handlers = OursHandlers(os.environ.get("BENCH_LATENCY") == "1")
    yield ticket_service.bind(handlers)
    # The App's shutdown runs once the last batch is acknowledged.
    out = {"end": time.time(), "latencies": handlers.seen}
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(out))


#: what the benchmark's ``toolkit run`` runs
APP = App("ticket_service", None, _ours)


def ours_command(url: str, *options: str) -> list[str]:
    return [
        *(sys.executable, "-m", "toolkit", "run", GROUP, "--channel", CHANNEL),
        *("--app", "bench.redis_e2e:APP", "--url", url, "--prefix", PREFIX),
        *("--batch-size", str(BATCH), *options),
    ]


def _ours_events(n: int) -> list[Any]:
    from generated.user_service import UserRegistered

    return [msgspec.convert(event_payload(i), UserRegistered) for i in range(min(n, 1000))]


async def ours_produce(url: str, n: int, mode: str) -> dict[str, float]:
    from generated.user_service import UserServicePublisher
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(url, prefix=PREFIX)
    await transport.check()
    publisher = UserServicePublisher(transport)
    publish = publisher.publish_user_registered
    events = _ours_events(n)
    m = len(events)
    start = time.time()
    if mode == "batched":
        bus = publisher.bus
        for first in range(0, n, BATCH):
            await bus.publish_events(
                "user.registered", [events[i % m] for i in range(first, min(first + BATCH, n))]
            )
    elif mode == "tasks":

        async def task(k: int) -> None:
            for i in range(k, n, TASKS):
                await publish(events[i % m])

        await asyncio.gather(*(task(k) for k in range(TASKS)))
    elif mode == "single":
        for i in range(n):
            await publish(events[i % m])
    elif mode == "paced":
        await _paced(n, lambda i: publish(events[i % m], metadata={"sent_ns": str(time.time_ns())}))
    else:
        raise ValueError(mode)
    end = time.time()
    await transport.close()
    return {"start": start, "end": end}


async def ours_fill(url: str, n: int) -> None:
    """``n`` messages as the generated publisher writes them, before any consumer runs."""
    from generated.user_service import UserServicePublisher
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(url, prefix=PREFIX)
    await transport.ensure_group(CHANNEL, GROUP)
    bus = UserServicePublisher(transport).bus
    events = _ours_events(n)
    for first in range(0, n, 1000):
        batch = [events[i % len(events)] for i in range(first, min(first + 1000, n))]
        await bus.publish_events("user.registered", batch)
    await transport.close()


# -- hand-written: sync redis-py ---------------------------------------------------------


def sync_produce(url: str, n: int, mode: str) -> dict[str, float]:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    payloads = encoded_payloads(n)
    m = len(payloads)
    start = time.time()
    if mode == "batched":
        for first in range(0, n, BATCH):
            xadd_batch(client, payloads, first, n).execute()
    elif mode == "paced":
        tick = 0.005
        per_tick = max(1, int(LATENCY_RATE * tick))
        t0 = time.monotonic()
        sent = 0
        while sent < n:
            pipe = client.pipeline(transaction=False)
            for i in range(sent, min(sent + per_tick, n)):
                pipe.xadd("raw", {"data": payloads[i % m], "sent_ns": time.time_ns()})
            pipe.execute()
            sent = min(sent + per_tick, n)
            wait = t0 + sent / LATENCY_RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    else:
        raise ValueError(mode)
    end = time.time()
    client.close()
    return {"start": start, "end": end}


def sync_consume(url: str, n: int, latency: bool, until_empty: bool) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP
        client.xgroup_create("raw", GROUP, "0", mkstream=True)
    decode = msgspec.json.Decoder(Event).decode
    seen: list[int] = []
    handled = 0

    def handler(event: Event) -> None:
        pass

    _ready()
    while until_empty or handled < n:
        reply: Any = client.xreadgroup(
            GROUP, "c1", {"raw": ">"}, count=BATCH, block=None if until_empty else 1000
        )
        if not reply:
            if until_empty:
                break
            continue
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        ids: list[bytes] = []
        for entry_id, fields in entries:
            handler(decode(fields[b"data"]))
            if latency:
                seen.append(time.time_ns() - int(fields[b"sent_ns"]))
            ids.append(entry_id)
        client.xack("raw", GROUP, *ids)
        handled += len(ids)
    end = time.time()
    client.close()
    return {"end": end, "latencies": seen}


def sync_fill(url: str, n: int) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.xgroup_create("raw", GROUP, "0", mkstream=True)
    payloads = encoded_payloads(n)
    for first in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(first + 1000, n)):
            pipe.xadd("raw", {"data": payloads[i % len(payloads)]})
        pipe.execute()
    client.close()


# -- hand-written: redis.asyncio ---------------------------------------------------------


async def async_produce(url: str, n: int, mode: str) -> dict[str, float]:
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    await client.ping()
    payloads = encoded_payloads(n)
    m = len(payloads)
    start = time.time()
    if mode == "batched":
        for first in range(0, n, BATCH):
            await xadd_batch(client, payloads, first, n).execute()
    elif mode == "single":
        for i in range(n):
            await client.xadd("raw", {"data": payloads[i % m]})
    else:
        raise ValueError(mode)
    end = time.time()
    await client.aclose()
    return {"start": start, "end": end}


async def async_consume(url: str, n: int, latency: bool, until_empty: bool) -> dict[str, Any]:
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP
        await client.xgroup_create("raw", GROUP, "0", mkstream=True)
    decode = msgspec.json.Decoder(Event).decode
    handled = 0

    def handler(event: Event) -> None:
        pass

    _ready()
    while handled < n:
        reply: Any = await client.xreadgroup(GROUP, "c1", {"raw": ">"}, count=BATCH, block=1000)
        if not reply:
            continue
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        ids: list[bytes] = []
        for entry_id, fields in entries:
            handler(decode(fields[b"data"]))
            ids.append(entry_id)
        await client.xack("raw", GROUP, *ids)
        handled += len(ids)
    end = time.time()
    await client.aclose()
    return {"end": end, "latencies": []}


# -- FastStream ----------------------------------------------------------------------------


async def faststream_produce(url: str, n: int, mode: str) -> dict[str, float]:
    from faststream.redis import RedisBroker

    broker = RedisBroker(url)
    await broker.connect()
    payloads = [event_payload(i) for i in range(min(n, 1000))]
    start = time.time()
    for first in range(0, n, BATCH):
        await asyncio.gather(
            *(
                broker.publish(payloads[i % len(payloads)], stream="faststream")
                for i in range(first, min(first + BATCH, n))
            )
        )
    end = time.time()
    await broker.stop()
    return {"start": start, "end": end}


async def faststream_consume(url: str, n: int, latency: bool, until_empty: bool) -> dict[str, Any]:
    from faststream.redis import RedisBroker, StreamSub
    from pydantic import BaseModel

    class PydanticEvent(BaseModel):  # FastStream validates with pydantic
        user_id: uuid.UUID
        email: str
        full_name: str
        registered_at: str

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


async def _paced(n: int, publish: Callable[[int], Any]) -> None:
    """``LATENCY_RATE`` messages per second in 5 ms ticks, each stamped as it is sent."""
    tick = 0.005
    per_tick = max(1, int(LATENCY_RATE * tick))
    start = time.monotonic()
    sent = 0
    while sent < n:
        count = min(per_tick, n - sent)
        await asyncio.gather(*(publish(sent + i) for i in range(count)))
        sent += count
        wait = start + sent / LATENCY_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


def _ready() -> None:
    print("READY", flush=True)


def _sync_or_async(result: Any) -> Any:
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


PRODUCERS: dict[str, Callable[[str, int, str], Any]] = {
    "ours": ours_produce,
    "sync": sync_produce,
    "async": async_produce,
    "faststream": faststream_produce,
}
CONSUMERS: dict[str, Callable[[str, int, bool, bool], Any]] = {
    "sync": sync_consume,
    "async": async_consume,
    "faststream": faststream_consume,
}


def child(args: argparse.Namespace) -> None:
    if args.side == "produce":
        result = _sync_or_async(PRODUCERS[args.child](args.url, args.messages, args.mode))
    else:
        result = _sync_or_async(
            CONSUMERS[args.child](args.url, args.messages, args.latency, args.until_empty)
        )
    print(json.dumps(result), flush=True)


def _child_command(role: str, side: str, url: str, n: int, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "bench.redis_e2e", "--child", role, "--side", side),
        *("--url", url, "--messages", str(n), *extra),
    ]


def _wait(process: subprocess.Popen[Any], timeout: float = 600) -> float:
    """Wait for ``process``; the CPU seconds (user + system) it used."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{process.args!r} did not finish")
        time.sleep(0.005)


def _wait_for_group(url: str, stream: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for _ in range(3000):
            with contextlib.suppress(redis.ResponseError):
                if any(g["name"] == GROUP.encode() for g in client.xinfo_groups(stream)):
                    return
            time.sleep(0.005)
        raise RuntimeError(f"no consumer group appeared on {stream}")
    finally:
        client.close()


class Consumer:
    """A consumer child process: started, ready, then its result and CPU time."""

    def __init__(
        self,
        role: str,
        url: str,
        n: int,
        *,
        latency: bool,
        until_empty: bool,
        extra: Sequence[str] = (),
    ) -> None:
        self.role = role
        self.out = Path(tempfile.mktemp(prefix="bench-out-"))
        if role == "ours":
            options = ["--until-empty"] if until_empty else ["--limit", str(n)]
            options.extend(extra)
            env = {**os.environ, "BENCH_OUT": str(self.out), "BENCH_LATENCY": str(int(latency))}
            self.process = subprocess.Popen(
                ours_command(url, *options),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert self.process.stderr is not None
            self.process.stderr.readline()  # the announce line: it runs
            _wait_for_group(url, OURS_STREAM)
        else:
            extra = [
                *(["--latency"] if latency else []),
                *(["--until-empty"] if until_empty else []),
            ]
            self.process = subprocess.Popen(
                _child_command(role, "consume", url, n, *extra),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            while line and line.strip() != "READY":  # FastStream logs to stdout
                line = self.process.stdout.readline()
            if not line:
                self.process.kill()
                raise RuntimeError(f"{role} consumer did not start")

    def finish(self) -> tuple[dict[str, Any], float]:
        try:
            if self.role == "ours":
                assert self.process.stderr is not None
                errors = self.process.stderr.read()
                cpu = _wait(self.process)
                if self.process.returncode != 0:
                    raise RuntimeError(f"toolkit run exited {self.process.returncode}: {errors}")
                result = json.loads(self.out.read_text())
            else:
                assert self.process.stdout is not None
                out = self.process.stdout.read()
                cpu = _wait(self.process)
                result = json.loads(out.strip().splitlines()[-1])
            return result, cpu
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.out.unlink(missing_ok=True)


def produce(role: str, url: str, n: int, mode: str) -> dict[str, float]:
    done = subprocess.run(
        _child_command(role, "produce", url, n, "--mode", mode),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def end_to_end(producer: str, consumer: str, url: str, n: int, mode: str) -> dict[str, Any]:
    """One producer process -> Redis -> one consumer process; rate and latencies."""
    flush(url)
    running = Consumer(consumer, url, n, latency=mode == "paced", until_empty=False)
    try:
        started = produce(producer, url, n, mode)["start"]
    finally:
        result, _ = running.finish()
    elapsed = result["end"] - started
    summary: dict[str, Any] = {"rate": n / elapsed}
    latencies = sorted(result["latencies"])
    if latencies:
        summary["p50_ms"] = statistics.median(latencies) / 1e6
        summary["p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] / 1e6
    return summary


def producer_alone(role: str, url: str, n: int) -> float:
    """Messages per second of one awaited send at a time, nobody consuming."""
    flush(url)
    times = produce(role, url, n, "single")
    return n / (times["end"] - times["start"])


def consumer_cpu(role: str, url: str, n: int, extra: Sequence[str] = ()) -> float:
    """CPU microseconds per message of a consumer process draining ``n`` prefilled
    messages, less those of the same process on an empty stream (start-up, shutdown);
    ``extra``: more ``toolkit run`` options (ours only)."""
    fill: Callable[[], None] = (
        (lambda: asyncio.run(ours_fill(url, n))) if role == "ours" else lambda: sync_fill(url, n)
    )
    cpu = {}
    for count in (0, n):
        flush(url)
        if count:
            fill()
        elif role == "ours":
            asyncio.run(ours_fill(url, 0))
        else:
            sync_fill(url, 0)
        consumer = Consumer(role, url, count, latency=False, until_empty=True, extra=extra)
        _, cpu[count] = consumer.finish()
    return (cpu[n] - cpu[0]) / n * 1e6


def loopback_round_trip(url: str) -> float | None:
    """Microseconds per PING for one client waiting for each reply (redis-benchmark -P 1)."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return None
    port = url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(
        [exe, "-p", port, "-c", "1", "-P", "1", "-n", "50000", "-t", "ping", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = [float(r) for r in re.findall(r"([\d.]+) requests per second", out)]
    return 1e6 / statistics.median(rates) if rates else None


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    from tests.redis.server import RedisServer

    server = RedisServer(folder).start()
    assert server.process is not None
    return server.process, server.url


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


def _verdict(ratio: float, goal: float, at_least: bool = True) -> str:
    met = ratio >= goal if at_least else ratio <= goal
    sign = ">=" if at_least else "<="
    return f"{ratio:5.2f}x   (goal {sign} {goal}x: {'met' if met else 'NOT met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument(
        "--slow-messages",
        type=int,
        default=12_000,
        help="for one awaited publish at a time and FastStream",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--side")
    parser.add_argument("--url")
    parser.add_argument("--mode")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--until-empty", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    try:
        import faststream  # noqa: F401

        peer = True
    except ImportError:
        peer = False
        print('FastStream not installed (pip install "faststream[redis]>=0.7,<0.8"): skipped')

    n, slow = args.messages, args.slow_messages
    # (name, producer, consumer, messages, producer mode)
    lines = [
        ("hand-written sync redis-py", "sync", "sync", n, "batched"),
        ("hand-written redis.asyncio", "async", "async", n, "batched"),
        ("ours: publish_events x100", "ours", "ours", n, "batched"),
        (f"ours: {TASKS} tasks, awaited publish_", "ours", "ours", n, "tasks"),
        ("ours: one awaited publish_", "ours", "ours", slow, "single"),
    ]
    if peer:
        lines.append(("FastStream 0.7", "faststream", "faststream", slow, "batched"))
    rates: dict[str, list[float]] = {line[0]: [] for line in lines}
    alone: dict[str, list[float]] = {"ours": [], "async": []}
    consumer_us: dict[str, list[float]] = {"ours": [], "sync": []}
    latency: dict[str, list[tuple[float, float]]] = {"ours": [], "sync": []}
    with private_redis("bench-redis-") as url:
        print(
            f"redis-server {url}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
            f"small event (user.registered), {n:,} messages ({slow:,} for the slow lines), "
            f"median of {args.rounds} rounds\n"
        )
        for round_ in range(1, args.rounds + 1):
            for name, producer, consumer, count, mode in lines:
                result = end_to_end(producer, consumer, url, count, mode)
                rates[name].append(result["rate"])
            for role in alone:
                alone[role].append(producer_alone(role, url, slow))
            for role in consumer_us:
                consumer_us[role].append(consumer_cpu(role, url, n))
            for role in latency:
                result = end_to_end(role, role, url, int(LATENCY_RATE * LATENCY_SECONDS), "paced")
                latency[role].append((result["p50_ms"], result["p99_ms"]))
            print(
                f"  round {round_}: "
                + ", ".join(
                    f"{name.split(':')[0]} {rates[name][-1]:,.0f}" for name, *_ in lines[:3]
                )
                + " msg/s",
                flush=True,
            )
        rtt = loopback_round_trip(url)

    med = {name: statistics.median(values) for name, values in rates.items()}
    print("\nend to end (producer process -> redis -> consumer process), msg/s:")
    sync_ref = med[lines[0][0]]
    for name, *_ in lines:
        print(f"  {name:<36} {med[name]:>9,.0f}   {med[name] / sync_ref:5.2f}x sync")
    batched = med["ours: publish_events x100"]
    tasks = med[f"ours: {TASKS} tasks, awaited publish_"]
    single = med["ours: one awaited publish_"]
    ours_alone = statistics.median(alone["ours"])
    async_alone = statistics.median(alone["async"])
    ours_cpu = statistics.median(consumer_us["ours"])
    sync_cpu = statistics.median(consumer_us["sync"])
    print("\ngoals:")
    print(f"  batched / hand-written sync            {_verdict(batched / sync_ref, 1.0)}")
    print(
        f"  batched / hand-written redis.asyncio   "
        f"{_verdict(batched / med['hand-written redis.asyncio'], 1.0)}"
    )
    print(f"  {TASKS} tasks / batched                    {_verdict(tasks / batched, 0.9)}")
    print(
        f"  one awaited publish / redis.asyncio XADD, producer alone "
        f"({ours_alone:,.0f} vs {async_alone:,.0f} msg/s): {_verdict(ours_alone / async_alone, 1.0)}"
    )
    if rtt is not None:
        print(
            f"    one awaited publish: {1e6 / ours_alone:5.1f} us; redis.asyncio XADD "
            f"{1e6 / async_alone:5.1f} us; loopback round trip (redis-benchmark -P 1 -c 1 ping) "
            f"{rtt:5.1f} us: {1e6 / ours_alone / rtt:.1f}x it"
        )
        print(f"    end to end, one awaited publish at a time: {single:,.0f} msg/s")
    print(
        f"  consumer CPU on a prefilled stream: ours {ours_cpu:.1f} us/msg, sync "
        f"{sync_cpu:.1f} us/msg: {_verdict(ours_cpu / sync_cpu, 1.3, at_least=False)}"
    )
    p50 = {role: statistics.median(v[0] for v in values) for role, values in latency.items()}
    p99 = {role: statistics.median(v[1] for v in values) for role, values in latency.items()}
    print(
        f"  latency at {LATENCY_RATE:,} msg/s, p50: ours {p50['ours']:.2f} ms, sync "
        f"{p50['sync']:.2f} ms: {_verdict(p50['ours'] / p50['sync'], 1.0, at_least=False)}"
    )
    print(
        f"  latency at {LATENCY_RATE:,} msg/s, p99: ours {p99['ours']:.2f} ms, sync "
        f"{p99['sync']:.2f} ms: {_verdict(p99['ours'] / p99['sync'], 1.0, at_least=False)}"
    )
    if peer:
        print(f"  batched / FastStream 0.7 (the peer)    {batched / med['FastStream 0.7']:5.1f}x")


if __name__ == "__main__":
    main()
