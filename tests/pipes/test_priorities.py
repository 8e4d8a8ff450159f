"""Priorities end to end on every pipe: a backlog waits, urgent commands are sent through
the generated publisher with ``priority=9``, and a ``toolkit run`` consumer started then
handles the urgent ones first (within its first batches), the rest in order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from generated.ticket_service.messages import CreateTicket
from generated.user_service import UserServicePublisher
from tests.pipes.conftest import PipeUnderTest
from tests.pipes.crash import BATCH, CHANNEL, ROOT, publish, read_log
from tests.redis.messages import ticket_create
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes

LOW = 2_000
URGENT = 20


async def send_urgent(pipe: PipeUnderTest) -> list[str]:
    pipes = Pipes(Bindings(pipes={"default": pipe.url}), PipeSettings(prefix=pipe.prefix))
    try:
        transport = pipes.transport(CHANNEL)
        if not getattr(transport, "prioritizes_messages", False):
            pytest.skip(f"{type(transport).__name__} does not order by priority yet")
        publisher = UserServicePublisher(pipes)
        return [
            await publisher.send_ticket_create(
                CreateTicket(ticket_id=uuid.uuid4(), subject="urgent", requester_email="a@b.c"),
                priority=9,
            )
            for _ in range(URGENT)
        ]
    finally:
        await pipes.close()


def test_a_consumer_takes_urgent_commands_before_its_backlog(
    pipe: PipeUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    low = [ticket_create(n) for n in range(LOW)]
    asyncio.run(publish(pipe.url, pipe.prefix, {CHANNEL: low}))
    urgent = asyncio.run(send_urgent(pipe))
    log = tmp_path / "handled.log"
    command = [
        *(sys.executable, "-m", "toolkit", "run", CHANNEL, "--service", "ticket_service"),
        *("--app", "tests.redis.apps:Recorder", "--url", pipe.url, "--prefix", pipe.prefix),
        *("--batch-size", str(BATCH)),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "TOOLKIT_TEST_LOG": str(log)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(read_log(log)) < LOW + URGENT:
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"{len(read_log(log))} handled"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    order = [mid for mid, _ in read_log(log)]
    positions = sorted(order.index(mid) + 1 for mid in urgent)
    with capsys.disabled():
        print(
            f"\n[priorities] {pipe.url.split(':')[0]}: {URGENT} urgent commands behind {LOW:,} "
            f"waiting were handled at positions {positions[0]}-{positions[-1]} "
            f"(batches of {BATCH})"
        )
    assert positions[-1] <= 2 * BATCH, positions
    assert sorted(order) == sorted([*urgent, *(e.headers.message_id for e in low)])
    rest = [mid for mid in order if mid not in set(urgent)]
    assert rest == [e.headers.message_id for e in low]  # equal priorities keep their order
