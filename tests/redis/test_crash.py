"""At-least-once under crashes: consumer processes killed with SIGKILL, Redis killed and restarted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import generated.ticket_service as ticket_service
from tests.pipes.crash import (
    CHANNEL,
    GROUP,
    ROOT,
    consumer_command,
    kill_consumers_repeatedly,
    read_log,
    scheduled_through_kills_and_a_restart,
)
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create, user_registered
from tests.redis.server import RedisServer
from toolkit import Consumer, RetryPolicy, TransportError
from toolkit.channels.redis import ChannelOptions, RedisTransport
from toolkit.channels.redis.keys import band_name


def run_command(url: str, prefix: str, app: str, *options: str) -> list[str]:
    """``toolkit run`` of the ticket service's command channel in a child process."""
    return consumer_command(url, prefix, app, *options, host=False)


def test_consumers_killed_mid_batch_lose_nothing(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    sent = {CHANNEL: [ticket_create(i) for i in range(20_000)]}
    run = kill_consumers_repeatedly(
        redis_url, prefix, tmp_path, sent, left=pending(redis_url, prefix, sent), flags=FLAGS
    )
    print(run)


def test_with_deduplication_only_the_crash_windows_are_handled_twice(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """The same run with ``--deduplicate``, and a copy of every tenth message published
    with its message id: the copies are never handled, duplicates are at most a record
    step per kill (the run above: up to a batch per kill)."""
    sent = {CHANNEL: [ticket_create(i) for i in range(20_000)]}
    run = kill_consumers_repeatedly(
        redis_url,
        prefix,
        tmp_path,
        sent,
        left=pending(redis_url, prefix, sent),
        flags=FLAGS,
        deduplicate="1h",
    )
    print(run)


def test_a_host_of_two_channels_killed_mid_batch_loses_nothing(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """`toolkit run ticket_service`: its two channels in each process, 10,000 messages each."""
    sent = {
        CHANNEL: [ticket_create(i) for i in range(10_000)],
        "user_events": [user_registered(i) for i in range(10_000)],
    }
    left = pending(redis_url, prefix, sent)
    print(
        kill_consumers_repeatedly(
            redis_url, prefix, tmp_path, sent, left=left, host=True, flags=FLAGS
        )
    )


#: a killed consumer's batch goes to another one a second later
FLAGS = ("--visibility-timeout", "1")


def pending(url: str, prefix: str, sent: dict[str, Any]) -> Callable[[], int]:
    async def count() -> int:
        transport = RedisTransport(url, prefix=prefix)
        try:
            return sum([await transport.pending_count(c, GROUP) for c in sent])
        finally:
            await transport.close()

    return lambda: asyncio.run(count())


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


def test_scheduled_messages_through_consumer_kills_and_a_redis_restart(tmp_path: Path) -> None:
    """Issue 12: 10,000 messages due over 10 s, consumers SIGKILLed meanwhile and Redis
    (append-only file) killed and restarted: each handled, none before its due time;
    prints the lateness (docs/delivery.md#scheduled-messages)."""
    server = RedisServer(tmp_path / "aof", appendonly=True).start()
    prefix = "sched"

    def restart() -> None:
        server.kill()  # SIGKILL: only what the AOF holds survives
        time.sleep(0.5)
        server.start()

    async def count() -> int:
        transport = RedisTransport(server.url, prefix=prefix)
        try:
            waiting = len(await transport.scheduled(CHANNEL))
            return waiting + await transport.pending_count(CHANNEL, GROUP)
        finally:
            await transport.close()

    try:
        run = scheduled_through_kills_and_a_restart(
            server.url,
            prefix,
            tmp_path,
            restart=restart,
            left=lambda: asyncio.run(count()),
            flags=FLAGS,
        )
    finally:
        server.stop()
    print(run)


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


def test_consumers_killed_mid_batch_lose_nothing_of_the_priority_bands(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """The same run with a third of the messages at priority 5 and a third at 9: each
    band's pending entries of a killed consumer are reclaimed like the channel's."""
    sent = {CHANNEL: [ticket_create(i, priority=(0, 5, 9)[i % 3]) for i in range(12_000)]}
    bands = {CHANNEL: [], band_name(CHANNEL, 5): [], band_name(CHANNEL, 9): []}
    run = kill_consumers_repeatedly(
        redis_url, prefix, tmp_path, sent, left=pending(redis_url, prefix, bands), flags=FLAGS
    )
    print(run)
