"""At-least-once under crashes on PostgreSQL: ``toolkit run`` consumer processes killed with
SIGKILL mid-batch; their leased rows come back when the visibility timeout runs out."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.redis.messages import ticket_create
from tests.redis.test_crash import read_log
from toolkit.channels.postgres import PostgresTransport

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "ticket_commands"
GROUP = "ticket_service"
BATCH = 50


def start_consumer(url: str, schema: str, log: Path, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TOOLKIT_TEST_LOG": str(log), "TOOLKIT_TEST_DELAY": "0.0004"}
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "toolkit", "run", CHANNEL, "--service", GROUP),
            *("--app", "tests.redis.apps:Recorder", "--url", url, "--prefix", schema),
            *("--consumer-name", name, "--batch-size", str(BATCH), "--visibility-timeout", "1"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_consumers_killed_mid_batch_lose_nothing(
    postgres_url: str, schema: str, tmp_path: Path
) -> None:
    """20,000 messages, two consumer processes, one SIGKILLed 8 times mid-batch (another
    started each time): every message handled, none left, duplicates only from the
    batches in flight at the kills."""
    kills_wanted = 8
    log = tmp_path / "handled.log"
    sent = [ticket_create(i) for i in range(20_000)]

    async def publish() -> None:
        transport = PostgresTransport(postgres_url, prefix=schema)
        await (await transport.subscribe(CHANNEL, GROUP, "publisher")).close()
        for i in range(0, len(sent), 1000):
            await transport.send(CHANNEL, sent[i : i + 1000])
        await transport.close()

    asyncio.run(publish())
    rng = random.Random(7)
    running = [start_consumer(postgres_url, schema, log, f"c{i}") for i in range(2)]
    started, kills = 2, 0
    try:
        deadline = time.monotonic() + 180
        while kills < kills_wanted:
            time.sleep(rng.uniform(0.4, 0.8))
            handled = len(read_log(log))
            assert handled < len(sent), f"all handled after {kills} kills; make the handler slower"
            victim = running.pop(rng.randrange(len(running)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            running.append(start_consumer(postgres_url, schema, log, f"c{started}"))
            started += 1
            assert time.monotonic() < deadline
        while len({mid for mid, _ in read_log(log)}) < len(sent):
            assert time.monotonic() < deadline, "messages still missing"
            time.sleep(0.1)
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            assert process.wait(15) == 0, process.stderr.read().decode() if process.stderr else ""
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()

    records = read_log(log)
    handled_ids = Counter(mid for mid, _ in records)
    assert set(handled_ids) == {e.headers.message_id for e in sent}, "a message was never handled"
    duplicates = len(records) - len(handled_ids)
    assert duplicates <= kills * BATCH, (duplicates, kills)
    # Each message handled twice came back as a redelivery (its delivery count above 1).
    redelivered = {mid for mid, count in records if count > 1}
    assert {mid for mid, n in handled_ids.items() if n > 1} <= redelivered
    print(f"{kills} kills, {len(records)} handlings, {duplicates} duplicates")

    async def left() -> int:
        transport = PostgresTransport(postgres_url, prefix=schema)
        async with transport.pool.connection("counting") as conn:
            cur = await conn.execute(f'SELECT count(*) FROM "{schema}".deliveries')
            row = await cur.fetchone()
        await transport.close()
        return int(row[0]) if row else -1

    assert asyncio.run(left()) == 0, "delivery rows left unsettled"
