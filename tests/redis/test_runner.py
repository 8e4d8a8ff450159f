"""The runner: its Python API, ``toolkit run`` (signals, exit codes) and ``toolkit dlq``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import generated.ticket_service as ticket_service
from tests.redis import apps
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import RetryPolicy, Runner, RunOptions
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "ticket_commands"
GROUP = "ticket_service"


async def test_runner_stops_at_its_limits(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    await transport.send(CHANNEL, [ticket_create(i) for i in range(30)])
    handlers = Memory()
    dispatcher = ticket_service.bind(handlers)

    runner = Runner(transport, CHANNEL, dispatcher, RunOptions(limit=10, batch_size=4))
    stats = await runner.run()
    assert (runner.reason, stats.handled) == ("limit", 10)

    runner = Runner(transport, CHANNEL, dispatcher, RunOptions(until_empty=True))
    stats = await runner.run()
    assert (runner.reason, stats.handled, len(handlers.ids)) == ("empty", 20, 30)

    start = time.monotonic()
    runner = Runner(transport, CHANNEL, dispatcher, RunOptions(time_limit=0.5, block_timeout=0.1))
    await runner.run()
    assert runner.reason == "time limit" and 0.4 < time.monotonic() - start < 2

    runner = Runner(transport, CHANNEL, dispatcher, RunOptions(memory_limit=1))
    await runner.run()
    assert runner.reason == "memory limit"
    assert await transport.pending_count(CHANNEL, GROUP) == 0


async def test_runner_stop_on_failure_and_from_another_task(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()

    def fail_on_3(message: Any, meta: Any) -> None:
        if message.subject == "ticket 3":
            raise RuntimeError("boom")

    handlers = Memory(fail_on_3)
    await transport.send(CHANNEL, [ticket_create(i) for i in range(10)])
    options = RunOptions(
        stop_on_failure=True, batch_size=5, retry=RetryPolicy(attempts=2, base=0.01)
    )
    runner = Runner(transport, CHANNEL, ticket_service.bind(handlers), options)
    stats = await runner.run()
    assert runner.reason == "failure" and stats.retried == 1 and stats.handled == 4

    # Inside an application: run in a task, stop it from elsewhere.
    # The retry of ticket 3 is still pending in the group: this runner gets it too.
    later = Memory()
    runner = Runner(transport, CHANNEL, ticket_service.bind(later), RunOptions(concurrency=4))
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.3)
    runner.stop()
    stats = await asyncio.wait_for(task, 5)
    assert runner.reason == "stopped" and stats.handled == 6
    retried = [
        d for d, m in zip(later.deliveries, later.messages, strict=True) if m.subject == "ticket 3"
    ]
    assert [d.delivery_count for d in retried] == [2]


def test_sigterm_finishes_the_batch_acknowledges_and_exits_0(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    log = tmp_path / "handled.log"

    async def publish() -> None:
        transport = RedisTransport(redis_url, prefix=prefix)
        await transport.send(CHANNEL, [ticket_create(i) for i in range(2000)])
        await transport.close()

    asyncio.run(publish())
    env = {**os.environ, "TOOLKIT_TEST_LOG": str(log), "TOOLKIT_TEST_DELAY": "0.002"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            "-v",
            "run",
            CHANNEL,
            "--service",
            GROUP,
            "--app",
            "tests.redis.apps:Recorder",
            "--url",
            redis_url,
            "--prefix",
            prefix,
            "--batch-size",
            "50",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not log.exists() or len(log.read_text().splitlines()) < 60:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert "SIGTERM: finishing the batch in hand" in stderr
    handled = len(log.read_text().splitlines())
    assert handled % 50 == 0 and 60 <= handled < 2000  # whole batches only

    client = redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    group = client.xinfo_groups(f"{prefix}:{{{CHANNEL}}}")[0]
    client.close()
    assert group["pending"] == 0 and group["entries-read"] == handled


def test_run_reports_bad_input_and_unreachable_redis(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", CHANNEL, "--service", GROUP, "--app", "tests.redis.apps:Memory"]
    assert main([*base, "--url", "redis://app:s3cret@127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Redis at redis://app:***@127.0.0.1:1/0" in err and "s3cret" not in err
    assert (
        main(
            ["run", "user_events", "--service", "user_service", "--app", "tests.redis.apps:Memory"]
        )
        == 2
    )
    assert "does not consume 'user_events'" in capsys.readouterr().err
    assert main(["run", CHANNEL, "--service", GROUP, "--app", "tests.redis.nope:X"]) == 2
    assert "cannot import 'tests.redis.nope'" in capsys.readouterr().err


def test_toolkit_run_applies_the_service_maps_subscriptions_to_a_hand_made_dispatcher(
    redis_url: str, prefix: str
) -> None:
    """user_events delivers ticket_service only events of user_service (include_publishers)."""
    events = [
        ticket_create(routing_key="user.registered", kind="event", target_service="", **h)
        for h in ({"source_service": "user_service"}, {"source_service": "billing_service"})
    ]

    async def send() -> None:
        transport = RedisTransport(redis_url, prefix=prefix)
        await transport.send("user_events", events)
        await transport.close()

    asyncio.run(send())
    apps.HAND_MADE_HANDLED.clear()
    argv = ["run", "user_events", "--service", GROUP, "--app", "tests.redis.apps:HAND_MADE"]
    assert main([*argv, "--url", redis_url, "--prefix", prefix, "--until-empty"]) == 0
    assert [d.message_id for d in apps.HAND_MADE_HANDLED] == [events[0].headers.message_id]
