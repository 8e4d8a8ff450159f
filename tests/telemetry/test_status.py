"""`toolkit status` against a real Redis (private server) holding a known backlog, pending
entries, a retry, dead letters, a retired group and a dead consumer: each figure exact.
The table is also checked in a real terminal (tmux, 80 columns)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.redis.messages import ticket_create
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main
from toolkit.commands.status import duration

ROOT = Path(__file__).parents[2]


async def fill(url: str, prefix: str, silence: float) -> None:
    """ticket_commands: 10 commands; worker-a receives 4 (acks 1, dead-letters 1, schedules
    1 for a retry), dead-b receives 2 and goes silent, worker-a receives 1 more later.
    legacy_service: a group the service map does not give the channel."""
    transport = RedisTransport(url, prefix=prefix)
    channel = "ticket_commands"
    await transport.send(channel, [ticket_create(n) for n in range(10)])
    worker = await transport.subscribe(channel, "ticket_service", "worker-a")
    got = await worker.receive(4, 0)
    await worker.ack(got[:1])
    await worker.reject(got[1], "test: bad")
    await worker.retry_later(got[2], 3600)
    dead = await transport.subscribe(channel, "ticket_service", "dead-b")
    assert len(await dead.receive(2, 0)) == 2
    await transport.ensure_group(channel, "legacy_service")
    await asyncio.sleep(silence)
    assert len(await worker.receive(1, 0)) == 1
    await transport.close()


def status_json(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", *flags, "--json"]) == 0
    out = capsys.readouterr().out
    document: dict[str, Any] = json.loads(out)
    return document


def test_json_figures_are_exact(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill(redis_url, prefix, 1.2))
    flags = ("--url", redis_url, "--prefix", prefix, "--visibility-timeout", "1")
    doc = status_json(capsys, *flags)
    by_name = {c["channel"]: c for c in doc["channels"]}
    assert sorted(by_name) == ["billing_events", "ticket_commands", "user_events"]
    commands = by_name["ticket_commands"]
    assert (commands["length"], commands["dead_letters"]) == (10, 1)
    assert commands["missing_groups"] == []
    legacy, tickets = commands["groups"]
    assert legacy == {
        "name": "legacy_service",
        "lag": 10,
        "pending": 0,
        "retrying": 0,
        "oldest_pending_age": None,
        "consumers": [],
        "retired": True,
        # Redis counts what is pending and names its consumers.
        "pending_known": True,
        "consumer_count": None,
    }
    age = tickets.pop("oldest_pending_age")
    assert 1.2 < age < 30
    dead_b, worker_a = tickets.pop("consumers")
    assert tickets == {
        "name": "ticket_service",
        "lag": 3,
        "pending": 5,  # 4 - 1 acked - 1 dead-lettered, + 2, + 1
        "retrying": 1,
        "retired": False,
        "pending_known": True,
        "consumer_count": None,
    }
    assert (dead_b["name"], dead_b["pending"], dead_b["dead"], dead_b["gone"]) == (
        "dead-b",
        2,
        True,
        False,
    )
    assert dead_b["idle"] > 1.2
    assert (worker_a["name"], worker_a["pending"], worker_a["dead"]) == ("worker-a", 3, False)
    assert worker_a["idle"] < 1
    users = by_name["user_events"]
    assert (users["length"], users["dead_letters"], users["groups"]) == (0, 0, [])
    assert users["missing_groups"] == ["billing_service", "ticket_service"]
    # One channel asked for by name.
    only = status_json(capsys, "ticket_commands", *flags)
    assert [c["channel"] for c in only["channels"]] == ["ticket_commands"]


def test_watch_json_prints_one_document_per_refresh(redis_url: str, prefix: str) -> None:
    asyncio.run(fill(redis_url, prefix, 0))
    command = [
        sys.executable, "-m", "toolkit", "status", "ticket_commands", "--url", redis_url,
        "--prefix", prefix, "--json", "--watch", "0.2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    try:
        documents = [json.loads(child.stdout.readline()) for _ in range(3)]
    finally:
        child.terminate()
        child.wait(timeout=10)
    for document in documents:
        [channel] = document["channels"]
        assert (channel["channel"], channel["length"], channel["dead_letters"]) == (
            "ticket_commands",
            10,
            1,
        )


def test_unreachable_redis_and_unknown_channels_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--url", "redis://127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("toolkit status: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(["status", "nowhere"]) == 2
    assert "no channel nowhere in the service map" in capsys.readouterr().err


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (None, 0.25, 12.34, 245, 11220, 187200)] == [
        "-",
        "250ms",
        "12.3s",
        "4m05s",
        "3h07m",
        "2d04h",
    ]


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=20
    ).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_table_in_a_real_terminal_at_80_columns(redis_url: str, prefix: str) -> None:
    asyncio.run(fill(redis_url, prefix, 6.0))
    session = f"tkstatus{uuid.uuid4().hex[:8]}"
    command = (
        f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m toolkit status --url {redis_url} "
        f"--prefix {prefix} --visibility-timeout 5 --watch 0.5"
    )
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "40", command],
        check=True,
        env=env,
        timeout=20,
    )
    try:
        screen = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-t", session)
            if "Ctrl-C to stop" in screen:
                break
            time.sleep(0.2)
        lines = screen.rstrip("\n").splitlines()
        assert "Ctrl-C to stop" in screen, screen
        # A line tmux had to wrap fills the 80 columns: none may.
        assert max(len(line) for line in lines) < 80, screen
        assert lines[0] == "billing_events: 0 entries, 0 dead letters"
        text = "\n".join(line.rstrip() for line in lines)
        assert "ticket_commands: 10 entries, 1 dead letter\n" in text
        assert "  GROUP           LAG  PENDING  RETRYING  OLDEST" in text
        assert "  legacy_service   10        0         0       -  retired" in text
        assert "  ticket_service    3        5         1" in text
        # the idle time's width varies with how long the fill took: "8.4s" or "12.3s"
        assert re.search(r"^  dead-b    ticket_service        2  +[0-9.]+s  dead$", text, re.M)
        assert "  dead: idle over 5.0s holding messages; another consumer reclaims them" in text
        [worker] = [line for line in lines if line.startswith("  worker-a  ")]
        [dead] = [line for line in lines if line.startswith("  dead-b  ")]
        assert dead.endswith("  dead") and not worker.rstrip().endswith("dead")
        assert (
            "  billing_service    -        -         -       -  not started (no group yet)" in text
        )
        # Ctrl-C ends the live view cleanly.
        tmux("send-keys", "-t", session, "C-c")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(
                ["tmux", "has-session", "-t", session], capture_output=True
            ).returncode:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the watch did not end on Ctrl-C")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
