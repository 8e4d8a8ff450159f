"""Exactly-once effect's cost on PostgreSQL: draining a backlog with it, with plain
deduplication, and with neither.

    python -m bench.exactly_once [--messages 5000] [--rounds 3] [--url URL]

In one process, one run, rounds and modes interleaved, each drain in a schema of
its own (dropped afterwards): ``--messages`` ``ticket.create`` commands are
sent, then a :class:`~toolkit.Runner` of ticket_service (batches of 100) drains
them. Its handler writes one row per message to a table of the service:

* ``off``: no deduplication; the handler inserts through a connection of its
  own (autocommit: the usual way, at least once);
* ``dedup``: ``deduplicate=24h``, the same handler;
* ``exactly-once``: ``deduplicate=24h, exactly_once=True``; the handler inserts
  through :func:`toolkit.context.current_transaction`.

``--handler none`` drops the handler's write (the delivery machinery alone).
Reported: messages per second of wall time (the server shares the machine, so
it is the cost that counts, client and server) and the consumer process's CPU
per message, medians, as ratios against ``off`` and ``dedup`` of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

URL = os.environ.get("TOOLKIT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHANNEL = "ticket_commands"
MODES = ("off", "dedup", "exactly-once")


def envelopes(n: int) -> list[Any]:
    from toolkit import Envelope, Headers, new_message_id

    out = []
    for i in range(n):
        body = msgspec.json.encode(
            {"ticket_id": str(uuid.uuid4()), "subject": f"ticket {i}", "requester_email": "a@b.c"}
        )
        mid = new_message_id()
        headers = Headers(
            message_id=mid,
            routing_key="ticket.create",
            kind="command",
            source_service="user_service",
            timestamp_ms=int(time.time() * 1000),
            target_service="ticket_service",
            correlation_id=mid,
        )
        out.append(Envelope(headers, body))
    return out


async def drain(url: str, mode: str, n: int, write: bool) -> tuple[float, float]:
    """(msg/s of wall time, consumer CPU us/msg) of draining ``n`` messages in ``mode``."""
    import psycopg

    import generated.ticket_service as ticket_service
    from toolkit import Runner, RunOptions
    from toolkit.channels.postgres import PostgresTransport
    from toolkit.context import current_transaction

    schema = f"bench_eo_{uuid.uuid4().hex[:8]}"
    transport = PostgresTransport(url, prefix=schema)
    own = await psycopg.AsyncConnection.connect(url, autocommit=True)
    table = f"{schema}.effects"
    insert = f"INSERT INTO {table} (message_id) VALUES (%s)"
    try:
        await (await transport.subscribe(CHANNEL, "ticket_service", "setup")).close()
        await own.execute(f"CREATE TABLE {table} (message_id text)")
        sent = envelopes(n)
        for i in range(0, n, 1000):
            await transport.send(CHANNEL, sent[i : i + 1000])

        class Handlers:
            async def on_ticket_create(self, message: Any, meta: Any) -> None:
                if write:
                    conn = current_transaction() or own
                    await conn.execute(insert, (meta.message_id,))

            def on_user_registered(self, message: Any, meta: Any) -> None: ...

            def on_user_billing_changed(self, message: Any, meta: Any) -> None: ...

        options = RunOptions(
            limit=n,
            batch_size=100,
            deduplicate=None if mode == "off" else 86400.0,
            exactly_once=mode == "exactly-once",
        )
        runner = Runner(transport, CHANNEL, ticket_service.bind(Handlers()), options)
        await runner.consumer.subscription()
        wall, cpu = time.perf_counter(), time.process_time()
        stats = await runner.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert stats.handled == n, stats
        if write:
            cur = await own.execute(f"SELECT count(*) FROM {table}")
            assert (await cur.fetchone()) == (n,)
        return n / wall, cpu / n * 1e6
    finally:
        await transport.close()
        await own.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await own.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--handler", choices=("write", "none"), default="write")
    args = parser.parse_args()
    n, write = args.messages, args.handler == "write"
    rate: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    what = "one INSERT per message" if write else "no write"
    print(f"{n:,} messages, handler: {what}, median of {args.rounds} rounds\n")
    for round_ in range(1, args.rounds + 1):
        for mode in MODES:
            r, c = asyncio.run(drain(args.url, mode, n, write))
            rate[mode].append(r)
            cpu[mode].append(c)
        print(
            f"  round {round_}: "
            + ", ".join(f"{m} {rate[m][-1]:,.0f} msg/s {cpu[m][-1]:.0f} us" for m in MODES),
            flush=True,
        )
    med = {m: statistics.median(rate[m]) for m in MODES}
    cpus = {m: statistics.median(cpu[m]) for m in MODES}
    print(f"\n{'mode':14} {'msg/s':>8} {'CPU us/msg':>11} {'vs off':>7} {'vs dedup':>9}")
    for m in MODES:
        print(
            f"{m:14} {med[m]:8,.0f} {cpus[m]:11.0f} {med[m] / med['off']:6.2f}x "
            f"{med[m] / med['dedup']:8.2f}x"
        )


if __name__ == "__main__":
    main()
