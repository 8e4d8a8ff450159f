"""End-to-end PostgreSQL benchmark: producer process -> PostgreSQL -> consumer process -> handler -> ack.

    python -m bench.postgres_e2e [--count 50000] [--runs 3] [--profile] [--flat 200000]

Each loop runs in a schema of its own on the PostgreSQL at ``--url``
(default ``TOOLKIT_BENCH_POSTGRES_URL``, else postgres@127.0.0.1:5432/test),
dropped afterwards, one after the other, each ``--runs`` times (median
reported), all in the same run so the ratios compare like with like:

* ours: ``DistributedBus.publish_events`` in batches of 100 (coalesced into
  one ``INSERT … SELECT FROM unnest`` each) -> the ``toolkit`` Runner of
  ticket_service with its generated ``bind()`` in a child process (claim of
  up to 100 with ``FOR UPDATE SKIP LOCKED`` and a lease, envelope reading,
  routing, typed decode, handler, one ``DELETE`` per batch), deleting
  settled messages beyond the default history of 10,000 as it goes;
* ours-keep: the same keeping every message, without the index
  ``deliveries_entry`` retention needs (the pipe as it was before it);
  ours-all (not run unless named in ``--roles``): keeping every message
  (``history=all``) with the index, to tell the index's cost from the
  deletions';
* raw (the reference of issue 10): a hand-written psycopg 3 loop: batched
  inserts of one ``bytea`` payload (``executemany`` of 100; ``raw-copy``: one
  ``COPY`` of 100), a consumer ``UPDATE … SET locked_until`` over a
  ``SKIP LOCKED`` batch of 100 (a visibility timeout), msgspec decode, one
  ``DELETE`` per batch.

Throughput is messages / (last acknowledgement - first publish). Then the
wake-up latency, publish -> handler, at the paced rate of
``bench.redis_e2e.LATENCY_RATE`` msg/s: ours
(``NOTIFY`` from the trigger) and the reference (``INSERT`` + ``NOTIFY`` in
one transaction, the consumer ``LISTEN``\\ ing and claiming on each
notification). ``--profile`` runs our consumer under cProfile and prints
its top entries. ``--flat N`` sends N messages paced at that rate through
ours-keep and ours once each, sampling the rows and size of ``messages`` and
the consumer's resident memory as they go (and vacuuming ``messages`` every
10 s, as autovacuum would).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.redis_e2e import LATENCY_RATE, Event, _paced, _ready, event_payload  # noqa: E402

URL = os.environ.get("TOOLKIT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
STREAM = "user_events"  # ours: the generated channel


# -- ours --------------------------------------------------------------------------------


async def ours_produce(url: str, schema: str, n: int, paced: bool) -> None:
    from generated.user_service import UserRegistered, UserServicePublisher
    from toolkit.channels.postgres import PostgresTransport

    transport = PostgresTransport(url, prefix=schema)
    publisher = UserServicePublisher(transport)
    events = [msgspec.convert(event_payload(i), UserRegistered) for i in range(min(n, 1000))]
    if not paced:
        bus = publisher.bus
        for start in range(0, n, 100):
            await bus.publish_events(
                "user.registered",
                [events[i % len(events)] for i in range(start, min(start + 100, n))],
            )
    else:
        await _paced(
            n,
            lambda i: publisher.publish_user_registered(
                events[i % len(events)], metadata={"sent_ns": str(time.time_ns())}
            ),
        )
    await transport.close()


async def ours_consume(
    url: str,
    schema: str,
    n: int,
    latency: bool,
    *,
    keep: bool = False,
    sample: bool = False,
    history: int | None = 10_000,
) -> dict[str, Any]:
    import generated.ticket_service as ticket_service
    from toolkit import Runner, RunOptions
    from toolkit.channels.postgres import PostgresTransport

    transport = PostgresTransport(url, prefix=schema, history=None if keep else history)
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
    if keep:  # the pipe before retention: no index to find a message's delivery rows
        async with transport.pool.connection("dropping the index") as conn:
            await conn.execute(f'DROP INDEX "{schema}".deliveries_entry')
    samples: list[list[float]] = []
    sampler = asyncio.ensure_future(_sample(transport, samples)) if sample else None
    _ready()
    await runner.run()
    end = time.time()
    if sampler is not None:
        sampler.cancel()
        await _sample_once(transport, samples)
    await transport.close()
    return {"end": end, "latencies": seen, "samples": samples}


async def ours_keep_consume(url: str, schema: str, n: int, latency: bool) -> dict[str, Any]:
    return await ours_consume(url, schema, n, latency, keep=True)


async def ours_all_consume(url: str, schema: str, n: int, latency: bool) -> dict[str, Any]:
    return await ours_consume(url, schema, n, latency, history=None)


async def _sample_once(transport: Any, samples: list[list[float]]) -> None:
    """[seconds, rows of messages, bytes of messages and its indexes, consumer RSS]."""
    from toolkit.rss import rss_bytes

    async with transport.pool.connection("sampling") as conn:
        cur = await conn.execute(
            f"SELECT count(*), pg_total_relation_size('{transport._s}.messages') "
            f"FROM {transport._s}.messages"
        )
        row = await cur.fetchone()
    samples.append([time.time(), float(row[0]), float(row[1]), float(rss_bytes())])


async def _sample(transport: Any, samples: list[list[float]]) -> None:
    """A sample a second; ``VACUUM messages`` every 10 s, as autovacuum would (deleted
    rows' space is reused once vacuumed; servers for tests often run without it)."""
    while True:
        await _sample_once(transport, samples)
        if len(samples) % 10 == 0:
            async with transport.pool.connection("vacuuming") as conn:
                await conn.execute(f"VACUUM {transport._s}.messages")
        await asyncio.sleep(1.0)


# -- the hand-written psycopg 3 visibility-timeout loop ----------------------------------


async def _raw_connect(url: str) -> Any:
    import psycopg

    return await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None)


async def raw_setup(url: str, schema: str) -> None:
    conn = await _raw_connect(url)
    await conn.execute(
        f'CREATE SCHEMA IF NOT EXISTS "{schema}"; '
        f'CREATE TABLE IF NOT EXISTS "{schema}".queue '
        "(id bigserial PRIMARY KEY, payload bytea NOT NULL, locked_until timestamptz)"
    )
    await conn.close()


async def _raw_produce(url: str, schema: str, n: int, paced: bool, copy: bool) -> None:
    conn = await _raw_connect(url)
    encode = msgspec.json.encode
    payloads = [encode(event_payload(i)) for i in range(min(n, 1000))]
    insert = f'INSERT INTO "{schema}".queue (payload) VALUES (%s)'
    if not paced:
        for start in range(0, n, 100):
            batch = [payloads[i % len(payloads)] for i in range(start, min(start + 100, n))]
            async with conn.cursor() as cur:
                if copy:
                    async with cur.copy(f'COPY "{schema}".queue (payload) FROM STDIN') as c:
                        for p in batch:
                            await c.write_row((p,))
                else:
                    await cur.executemany(insert, [(p,) for p in batch])
    else:
        lock = asyncio.Lock()

        async def one(i: int) -> None:
            data = payloads[i % len(payloads)][:-1] + b',"sent_ns":%d}' % time.time_ns()
            async with lock, conn.transaction():
                await conn.execute(insert, (data,))
                await conn.execute(f'NOTIFY "{schema}"')

        await _paced(n, one)
    await conn.close()


async def raw_produce(url: str, schema: str, n: int, paced: bool) -> None:
    await _raw_produce(url, schema, n, paced, copy=False)


async def raw_copy_produce(url: str, schema: str, n: int, paced: bool) -> None:
    await _raw_produce(url, schema, n, paced, copy=True)


class TimedEvent(Event):
    sent_ns: int = 0


async def raw_consume(url: str, schema: str, n: int, latency: bool) -> dict[str, Any]:
    conn = await _raw_connect(url)
    listener = await _raw_connect(url)
    await listener.execute(f'LISTEN "{schema}"')
    decode = msgspec.json.Decoder(TimedEvent).decode
    claim = (
        f"UPDATE \"{schema}\".queue SET locked_until = now() + interval '30 seconds' "
        f'WHERE id IN (SELECT id FROM "{schema}".queue '
        "WHERE locked_until IS NULL OR locked_until < now() "
        "ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, payload"
    )
    delete = f'DELETE FROM "{schema}".queue WHERE id = ANY(%s)'
    seen: list[int] = []
    handled = 0

    def handler(event: TimedEvent) -> None:
        pass

    _ready()
    while handled < n:
        cur = await conn.execute(claim)
        rows = await cur.fetchall()
        if not rows:
            async for _ in listener.notifies(timeout=1.0, stop_after=1):
                pass
            continue
        ids: list[int] = []
        for row_id, payload in sorted(rows):
            event = decode(payload)
            handler(event)
            if latency:
                seen.append(time.time_ns() - event.sent_ns)
            ids.append(row_id)
        await conn.execute(delete, (ids,))
        handled += len(ids)
    end = time.time()
    await conn.close()
    await listener.close()
    return {"end": end, "latencies": seen}


ROLES = {
    "ours": (ours_produce, ours_consume),
    "ours-keep": (ours_produce, ours_keep_consume),
    "ours-all": (ours_produce, ours_all_consume),
    "raw": (raw_produce, raw_consume),
    "raw-copy": (raw_copy_produce, raw_consume),
}


def child(role: str, side: str, url: str, schema: str, n: int, paced: bool) -> None:
    produce, consume = ROLES[role]
    if side == "produce":
        start = time.time()
        asyncio.run(produce(url, schema, n, paced))
        print(json.dumps({"start": start}), flush=True)
    elif side == "profile":
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        result = asyncio.run(consume(url, schema, n, False))
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(18)
        print(json.dumps(result), flush=True)
    elif side == "sample":
        result = asyncio.run(ours_consume(url, schema, n, False, keep=role != "ours", sample=True))
        print(json.dumps(result), flush=True)
    else:
        result = asyncio.run(consume(url, schema, n, paced))
        print(json.dumps(result), flush=True)


def run_pair(
    role: str, url: str, n: int, paced: bool = False, side: str = "consume"
) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    if role.startswith("raw"):
        asyncio.run(raw_setup(url, schema))
    base = [sys.executable, __file__, "--child", role, "--url", url, "--schema", schema]
    base += ["--count", str(n)]
    if paced:
        base += ["--paced"]
    try:
        consumer = subprocess.Popen([*base, "--side", side], stdout=subprocess.PIPE, text=True)
        assert consumer.stdout is not None
        line = consumer.stdout.readline()
        while line and line.strip() != "READY":
            line = consumer.stdout.readline()
        if not line:
            consumer.kill()
            raise RuntimeError(f"{role} consumer did not start")
        try:
            producer = subprocess.run(
                [*base, "--side", "produce"],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
                timeout=1800,
            )
            started = json.loads(producer.stdout.strip().splitlines()[-1])["start"]
            out, _ = consumer.communicate(timeout=1800)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait()
    finally:
        asyncio.run(_drop(url, schema))
    result = json.loads(out.strip().splitlines()[-1])
    elapsed = result["end"] - started
    latencies = sorted(result["latencies"])
    summary: dict[str, Any] = {"elapsed": elapsed, "rate": n / elapsed}
    if latencies:
        summary["p50_ms"] = statistics.median(latencies) / 1e6
        summary["p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] / 1e6
    summary["samples"] = result.get("samples", [])
    return summary


async def _drop(url: str, schema: str) -> None:
    conn = await _raw_connect(url)
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()


def flat(url: str, n: int) -> None:
    """N messages paced at LATENCY_RATE through ours-keep and ours: the rows and size of
    ``messages`` and the consumer's resident memory at each quarter of the run."""
    print(
        f"\n{n:,} messages at {LATENCY_RATE:,} msg/s: rows of messages / its size (MiB) / "
        "consumer RSS (MiB) at each quarter of the run, and the most rows seen:"
    )
    mib = 2**20
    for role in ("ours-keep", "ours"):
        samples = run_pair(role, url, n, paced=True, side="sample")["samples"]
        quarters = [samples[min(len(samples) * q // 4, len(samples) - 1)] for q in (1, 2, 3, 4)]
        shown = "   ".join(f"{s[1]:,.0f} / {s[2] / mib:.1f} / {s[3] / mib:.1f}" for s in quarters)
        print(f"  {role:<9} {shown}   (most {max(s[1] for s in samples):,.0f} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--flat", type=int, default=0, help="messages for the flat-size run")
    parser.add_argument("--roles", default="raw,raw-copy,ours-keep,ours")
    parser.add_argument("--child")
    parser.add_argument("--side")
    parser.add_argument("--schema")
    parser.add_argument("--paced", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.side, args.url, args.schema, args.count, args.paced)
        return

    roles = args.roles.split(",")
    print(f"PostgreSQL {args.url}, {os.cpu_count()} CPUs, small event (user.registered)")
    print(f"{args.count:,} messages, median of {args.runs}\n")
    rates: dict[str, list[float]] = {role: [] for role in roles}
    for run in range(args.runs):
        for role in roles:
            result = run_pair(role, args.url, args.count)
            rates[role].append(result["rate"])
            print(f"  run {run + 1} {role:<9} {result['rate']:>9,.0f} msg/s")
    median = {role: statistics.median(found) for role, found in rates.items()}
    print()
    for role in roles:
        print(f"  {role:<9} median {median[role]:>9,.0f} msg/s")
    if "ours" in median:
        for ref in ("raw", "raw-copy", "ours-keep"):
            if ref in median:
                print(f"ours / {ref}: {median['ours'] / median[ref]:.2f}x")
    print(f"\nwake-up latency, publish -> handler, at {LATENCY_RATE:,} msg/s:")
    paced = int(LATENCY_RATE * args.latency_seconds)
    for role in ("ours", "raw"):
        if role in roles:
            lat = run_pair(role, args.url, paced, paced=True)
            print(f"  {role:<9} p50 {lat['p50_ms']:6.2f} ms   p99 {lat['p99_ms']:6.2f} ms")
    if args.flat:
        flat(args.url, args.flat)
    if args.profile:
        print("\nprofile of our consumer (tottime, top entries) on stderr:")
        run_pair("ours", args.url, args.count, side="profile")


if __name__ == "__main__":
    main()
