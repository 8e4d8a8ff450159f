"""At least once under crashes: ``toolkit relay`` processes killed with SIGKILL mid-batch while
20,000 outbox messages go to Redis. A killed relay's transaction never commits, so its rows
stay and the next relay sends them: nothing lost, duplicates only from the batches in flight."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.outbox.conftest import stream_ids
from tests.redis.messages import user_registered
from toolkit.outbox import outbox_for

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "user_events"
BATCH = 100
KILLS = 8
TOTAL = 20_000


def start_relay(postgres_url: str, redis_url: str, prefix: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "toolkit", "relay", "--outbox", postgres_url]
    command += ["--url", redis_url, "--prefix", prefix, "--batch-size", str(BATCH)]
    return subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def test_relays_killed_mid_batch_lose_nothing(
    postgres_url: str, schema: str, redis_url: str
) -> None:
    sent: list[str] = []

    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            for start in range(0, TOTAL, 1000):
                envelopes = [user_registered(n) for n in range(start, start + 1000)]
                async with conn.transaction():
                    await outbox_for(conn, prefix=schema).send(CHANNEL, envelopes)
                sent.extend(e.headers.message_id for e in envelopes)

    asyncio.run(write())
    db = psycopg.connect(postgres_url, autocommit=True)

    def left() -> int:
        row = db.execute(f'SELECT count(*) FROM "{schema}".outbox').fetchone()
        return int(row[0]) if row else -1

    rng = random.Random(12)
    relay = start_relay(postgres_url, redis_url, schema)
    kills = 0
    try:
        deadline = time.monotonic() + 180
        while kills < KILLS:
            mark = left()
            while left() > mark - 2 * BATCH:  # the relay is at work: a batch is in flight
                assert time.monotonic() < deadline, "the relay moves nothing"
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            assert left() > 0, f"all relayed after {kills} kills; make the batches smaller"
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
            relay = start_relay(postgres_url, redis_url, schema)
        while left():
            assert time.monotonic() < deadline, "rows left in the outbox"
            time.sleep(0.05)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(15) == 0, relay.stderr.read().decode() if relay.stderr else ""
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
        db.close()

    ids = asyncio.run(stream_ids(redis_url, schema, CHANNEL))
    assert set(ids) == set(sent), f"{len(set(sent) - set(ids))} lost"
    duplicates = len(ids) - len(set(ids))
    assert duplicates <= kills * BATCH, duplicates
    print(f"{TOTAL} messages, {kills} relays killed, {duplicates} duplicates")
