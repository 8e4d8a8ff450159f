"""Publishing through the transactional outbox vs publishing directly to Redis, same run.

    python -m bench.outbox [--messages 5000] [--runs 3] [--postgres URL] [--batch 1]

On a private redis-server and a schema of its own on the PostgreSQL at
``--postgres`` (dropped afterwards), the generated ``UserServicePublisher``
publishes ``user.registered`` events:

* direct: through the Redis transport, each publish awaited (one round trip each);
* bare INSERT (reference): the same transactions inserting a msgspec-encoded row by hand
  with psycopg: what the database costs without the toolkit;
* outbox, write: each publish in a PostgreSQL transaction of its own (``--batch``
  publishes per transaction), through ``outbox_for(conn)``: what the application waits for;
* outbox, end to end: the same writes with a :class:`~toolkit.outbox.Relay` running
  beside them in the process, timed until the last message is on the Redis stream.

Median of ``--runs`` (interleaved, so the machine's noise hits every mode alike);
CPU time per message is the whole process's (the relay's included end to end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.redis_e2e import flush, private_redis  # noqa: E402

URL = os.environ.get("TOOLKIT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
Mode = Callable[[str, str, int, int], Awaitable[None]]


def events(n: int) -> list[object]:
    from generated.user_service import UserRegistered

    when = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        UserRegistered(user_id=uuid.uuid4(), email=f"u{i}@x.io", full_name="U", registered_at=when)
        for i in range(n)
    ]


async def direct(redis_url: str, postgres_url: str, n: int, batch: int) -> None:
    from generated.user_service import UserServicePublisher
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(redis_url, prefix="bench")
    publisher = UserServicePublisher(transport)
    try:
        for event in events(n):
            await publisher.publish_user_registered(event)  # type: ignore[arg-type]
    finally:
        await transport.close()


async def _write(postgres_url: str, schema: str, n: int, batch: int) -> None:
    import psycopg

    from generated.user_service import UserServicePublisher
    from toolkit.outbox import outbox_for

    all_events = events(n)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        for start in range(0, n, batch):
            async with conn.transaction():
                publisher = UserServicePublisher(outbox_for(conn, prefix=schema))
                for event in all_events[start : start + batch]:
                    await publisher.publish_user_registered(event)  # type: ignore[arg-type]


async def write_only(redis_url: str, postgres_url: str, n: int, batch: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        await _write(postgres_url, schema, n, batch)
    finally:
        await _drop(postgres_url, schema)


async def bare_insert(redis_url: str, postgres_url: str, n: int, batch: int) -> None:
    """The reference: the same transactions inserting a msgspec-encoded row by hand."""
    import msgspec
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    encode = msgspec.json.Encoder().encode
    all_events = events(n)
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(f"CREATE TABLE {schema}.t (id bigserial PRIMARY KEY, body bytea)")
            await conn.commit()
            for start in range(0, n, batch):
                async with conn.transaction():
                    for event in all_events[start : start + batch]:
                        await conn.execute(
                            f"INSERT INTO {schema}.t (body) VALUES (%s)", (encode(event),)
                        )
    finally:
        await _drop(postgres_url, schema)


async def end_to_end(redis_url: str, postgres_url: str, n: int, batch: int) -> None:
    from toolkit.outbox import Relay
    from toolkit.pipe_settings import Bindings, PipeSettings
    from toolkit.pipes import Pipes

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    pipes = Pipes(Bindings(pipes={"default": redis_url}), PipeSettings(prefix="bench"))
    relay = Relay(postgres_url, pipes, prefix=schema, poll_interval=0.01)
    try:
        async with relay.running():
            await _write(postgres_url, schema, n, batch)
            while relay.stats.relayed < n:
                await asyncio.sleep(0.002)
    finally:
        await pipes.close()
        await _drop(postgres_url, schema)


async def _drop(postgres_url: str, schema: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


MODES: dict[str, Mode] = {
    "direct to Redis": direct,
    "bare INSERT (reference)": bare_insert,
    "outbox: write": write_only,
    "outbox: write + relay": end_to_end,
}


def measure(
    mode: Mode, redis_url: str, postgres_url: str, n: int, batch: int
) -> tuple[float, float]:
    flush(redis_url)
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(mode(redis_url, postgres_url, n, batch))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="publishes per transaction (1)")
    parser.add_argument("--postgres", default=URL, metavar="URL")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in MODES}
    with private_redis("bench-outbox-") as redis_url:
        for _ in range(args.runs):
            for name, mode in MODES.items():
                results[name].append(
                    measure(mode, redis_url, args.postgres, args.messages, args.batch)
                )
    print(
        f"outbox vs direct, {args.messages:,} user.registered events, {args.batch} per "
        f"transaction, median of {args.runs}, {os.cpu_count()} CPUs"
    )
    print(f"  {'mode':<24}{'msg/s':>10}{'CPU us/msg':>12}{'vs direct':>11}{'vs bare INSERT':>16}")
    base = statistics.median(rate for rate, _ in results["direct to Redis"])
    bare = statistics.median(rate for rate, _ in results["bare INSERT (reference)"])
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:<24}{rate:>10,.0f}{cpu:>12.1f}{rate / base:>10.2f}x{rate / bare:>15.2f}x")


if __name__ == "__main__":
    main()
