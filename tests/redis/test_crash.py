"""At-least-once under crashes: consumer processes killed with SIGKILL, Redis killed and restarted."""

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
from typing import Any

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create, user_registered
from tests.redis.server import RedisServer
from toolkit import Consumer, RetryPolicy, TransportError
from toolkit.channels.redis import ChannelOptions, RedisTransport

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "ticket_commands"
GROUP = "ticket_service"
BATCH = 50


def read_log(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(mid, int(count)) for mid, count in (line.split() for line in lines if line)]


def run_command(url: str, prefix: str, app: str, *options: str) -> list[str]:
    """``toolkit run`` of the ticket service in a child process."""
    return [
        *(sys.executable, "-m", "toolkit", "run", CHANNEL, "--service", GROUP),
        *("--app", f"tests.redis.apps:{app}", "--url", url, "--prefix", prefix, *options),
    ]


def host_command(url: str, prefix: str, app: str, *options: str) -> list[str]:
    """``toolkit run`` of the whole ticket service (all its channels) in a child process."""
    return [
        *(sys.executable, "-m", "toolkit", "run", GROUP, "--app", f"tests.redis.apps:{app}"),
        *("--url", url, "--prefix", prefix, *options),
    ]


def start_consumer(
    url: str, prefix: str, log: Path, name: str, *, host: bool = False
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TOOLKIT_TEST_LOG": str(log), "TOOLKIT_TEST_DELAY": "0.0004"}
    command = host_command if host else run_command
    return subprocess.Popen(
        command(
            url,
            prefix,
            "Recorder",
            *("--consumer-name", name, "--batch-size", str(BATCH), "--visibility-timeout", "1"),
        ),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_consumers_killed_mid_batch_lose_nothing(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    sent = {CHANNEL: [ticket_create(i) for i in range(20_000)]}
    kill_consumers_repeatedly(redis_url, prefix, tmp_path, sent, host=False)


def test_a_host_of_two_channels_killed_mid_batch_loses_nothing(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """`toolkit run ticket_service`: its two channels in each process, 10,000 messages each."""
    sent = {
        CHANNEL: [ticket_create(i) for i in range(10_000)],
        "user_events": [user_registered(i) for i in range(10_000)],
    }
    kill_consumers_repeatedly(redis_url, prefix, tmp_path, sent, host=True)


def kill_consumers_repeatedly(
    redis_url: str, prefix: str, tmp_path: Path, sent: dict[str, list[Any]], *, host: bool
) -> None:
    """Publish ``sent``, run two consumer processes, SIGKILL one 8 times mid-batch
    (starting another each time): every message handled, none pending, duplicates only
    from the batches in flight at the kills."""
    kills_wanted = 8
    log = tmp_path / "handled.log"
    every = [e for envelopes in sent.values() for e in envelopes]
    total = len(every)

    async def publish() -> None:
        transport = RedisTransport(redis_url, prefix=prefix)
        for channel, envelopes in sent.items():
            await transport.ensure_group(channel, GROUP)
            for i in range(0, len(envelopes), 1000):
                await transport.send(channel, envelopes[i : i + 1000])
        await transport.close()

    asyncio.run(publish())
    rng = random.Random(7)
    running = [start_consumer(redis_url, prefix, log, f"c{i}", host=host) for i in range(2)]
    started, kills = 2, 0
    try:
        deadline = time.monotonic() + 120
        while kills < kills_wanted:
            # Kill only while work is in progress, so the victim is mid-batch.
            time.sleep(rng.uniform(0.4, 0.8))
            handled = len(read_log(log))
            assert handled < total, f"all handled after {kills} kills; make the handler slower"
            victim = running.pop(rng.randrange(len(running)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            running.append(start_consumer(redis_url, prefix, log, f"c{started}", host=host))
            started += 1
            assert time.monotonic() < deadline
        while len({mid for mid, _ in read_log(log)}) < total:
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
    assert set(handled_ids) == {e.headers.message_id for e in every}, "a message was never handled"
    duplicates = len(records) - len(handled_ids)
    # Only messages in flight at a kill (at most one batch per channel of a killed
    # consumer) come twice...
    assert duplicates <= kills * BATCH * len(sent), (duplicates, kills)
    # ...and each of them was a redelivery (delivery count > 1) of one such message.
    redelivered = {mid for mid, count in records if count > 1}
    print(
        f"{kills} kills, {len(records)} handlings, {duplicates} duplicates, {len(redelivered)} redelivered"
    )
    assert {mid for mid, n in handled_ids.items() if n > 1} <= redelivered
    assert redelivered, "no kill caught a batch in flight"

    async def pending() -> int:
        transport = RedisTransport(redis_url, prefix=prefix)
        try:
            return sum([await transport.pending_count(c, GROUP) for c in sent])
        finally:
            await transport.close()

    assert asyncio.run(pending()) == 0


async def test_redis_killed_and_restarted_with_appendonly_loses_nothing(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True).start()
    sent = [ticket_create(i) for i in range(3000)]
    handlers = Memory()
    options = ChannelOptions(visibility_timeout=1.0)
    transport = RedisTransport(server.url, prefix="restart", options=options)
    publisher = RedisTransport(server.url, prefix="restart")
    consumer = Consumer(
        transport, CHANNEL, ticket_service.bind(handlers), batch_size=50, block_timeout=0.2
    )

    async def send(batch: list[Any]) -> None:
        while True:
            try:
                await publisher.send(CHANNEL, batch)
                return
            except TransportError:
                await asyncio.sleep(0.1)

    try:
        await consumer.subscription()
        task = asyncio.create_task(consumer.run())
        for i in range(0, len(sent), 100):
            await send(sent[i : i + 100])
            if i == 1500:
                server.kill()  # SIGKILL: no shutdown, only what the AOF holds survives
                await asyncio.sleep(0.5)
                server.start()
            await asyncio.sleep(0.01)
        want = {e.headers.message_id for e in sent}
        deadline = time.monotonic() + 30
        while not want <= set(handlers.ids):
            assert time.monotonic() < deadline, f"missing {len(want - set(handlers.ids))}"
            await asyncio.sleep(0.05)
        consumer.stop()
        await asyncio.wait_for(task, 10)
        assert await transport.pending_count(CHANNEL, GROUP) == 0
        assert set(handlers.ids) == want
        await consumer.close()
    finally:
        await transport.close()
        await publisher.close()
        server.stop()


def test_message_that_kills_its_consumer_is_dead_lettered_after_the_default_limit(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """`toolkit run` without --max-deliveries: a handler that ends the process
    (``os._exit``, as a segfault or an OOM kill would) is called on deliveries 1 to
    ``attempts + CRASH_MARGIN``; the next delivery is dead-lettered, not handled."""
    log = tmp_path / "handled.log"
    crash = ticket_create(
        body=b'{"ticket_id":"7d0e3f5e-8f63-4a55-b8a1-0f7e2ea7a0b1","subject":"crash",'
        b'"requester_email":"x@y.z"}'
    )
    after = ticket_create(1)

    async def send(envelope: Any) -> None:
        transport = RedisTransport(redis_url, prefix=prefix)
        await transport.send(CHANNEL, [envelope])
        await transport.close()

    async def dead_letters() -> list[Any]:
        transport = RedisTransport(redis_url, prefix=prefix)
        try:
            return await transport.dead_letters(CHANNEL)
        finally:
            await transport.close()

    options = ("--visibility-timeout", "0.1", "--max-attempts", "1", "--until-empty")
    command = run_command(redis_url, prefix, "Crasher", *options)
    env = {**os.environ, "TOOLKIT_TEST_LOG": str(log)}
    limit = RetryPolicy(attempts=1).delivery_limit
    asyncio.run(send(crash))
    crashes = 0
    while not asyncio.run(dead_letters()):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=30)
        assert done.returncode in (0, 3), done.stderr.decode()
        crashes += done.returncode == 3
        assert crashes <= limit, "still handing the message to the handler"
        # An early clean exit: the message was not idle long enough to be reclaimed yet.
        time.sleep(0.1 if done.returncode == 0 else 0)
    assert crashes == limit
    assert read_log(log) == [(crash.headers.message_id, n) for n in range(1, limit + 1)]
    [letter] = asyncio.run(dead_letters())
    assert letter.envelope.headers.message_id == crash.headers.message_id
    assert f"delivered {limit + 1} times without being settled" in letter.reason

    asyncio.run(send(after))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=30)
    assert done.returncode == 0 and read_log(log)[-1] == (after.headers.message_id, 1)
