"""At-least-once under crashes on RabbitMQ: `toolkit run` consumer processes killed with
SIGKILL mid-batch (the broker requeues what their connection held), then a drain."""

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
from toolkit.channels.rabbitmq import RabbitTransport

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "ticket_commands"
GROUP = "ticket_service"
BATCH = 50


def start_consumer(url: str, prefix: str, log: Path, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TOOLKIT_TEST_LOG": str(log), "TOOLKIT_TEST_DELAY": "0.0004"}
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "toolkit", "run", CHANNEL, "--service", GROUP),
            *("--app", "tests.redis.apps:Recorder", "--url", url, "--prefix", prefix),
            *("--consumer-name", name, "--batch-size", str(BATCH)),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_consumers_killed_mid_batch_lose_nothing(
    amqp_url: str, prefix: str, tmp_path: Path
) -> None:
    kills_wanted = 8
    log = tmp_path / "handled.log"
    sent = [ticket_create(i) for i in range(20_000)]

    async def publish() -> None:
        transport = RabbitTransport(amqp_url, prefix=prefix, groups={CHANNEL: [GROUP]})
        for i in range(0, len(sent), 1000):
            await transport.send(CHANNEL, sent[i : i + 1000])
        await transport.close()

    asyncio.run(publish())
    rng = random.Random(7)
    running = [start_consumer(amqp_url, prefix, log, f"c{i}") for i in range(2)]
    started, kills = 2, 0
    try:
        deadline = time.monotonic() + 180
        while kills < kills_wanted:
            # Kill only while work is in progress, so the victim is mid-batch.
            time.sleep(rng.uniform(0.6, 1.2))
            handled = len(read_log(log))
            assert handled < len(sent), f"all handled after {kills} kills; make the handler slower"
            victim = running.pop(rng.randrange(len(running)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            running.append(start_consumer(amqp_url, prefix, log, f"c{started}"))
            started += 1
            assert time.monotonic() < deadline
        while len({mid for mid, _ in read_log(log)}) < len(sent):
            assert time.monotonic() < deadline, "messages still missing"
            time.sleep(0.1)
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            assert process.wait(10) == 0, process.stderr.read().decode() if process.stderr else ""
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()

    records = read_log(log)
    handled_ids = Counter(mid for mid, _ in records)
    assert set(handled_ids) == {e.headers.message_id for e in sent}, "a message was never handled"
    duplicates = len(records) - len(handled_ids)
    # Only the batch in flight at each kill comes twice...
    assert duplicates <= kills * BATCH, (duplicates, kills)
    # ...and each such message came again as a redelivery (delivery count > 1).
    redelivered = {mid for mid, count in records if count > 1}
    print(f"{kills} kills, {len(records)} handlings, {duplicates} duplicates")
    assert {mid for mid, n in handled_ids.items() if n > 1} <= redelivered
    assert redelivered, "no kill caught a batch in flight"

    async def left() -> int | None:
        transport = RabbitTransport(amqp_url, prefix=prefix)
        try:
            return await transport.queue_length(transport.names(CHANNEL).queue(GROUP))
        finally:
            await transport.close()

    # Every consumer is gone: anything unacknowledged would be ready again.
    assert asyncio.run(left()) == 0
