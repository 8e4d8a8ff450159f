"""Moving a channel with a backlog to another pipe, as docs/pipes.md says: nothing lost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis.messages import ticket_create
from tests.redis.server import RedisServer
from tests.redis.test_crash import read_log
from tests.redis.test_host import ENV, ROOT
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes


@pytest.fixture
def new_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "new").start()
    yield server
    server.stop()


def drain(log: Path, prefix: str, *flags: str) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "toolkit", "run", "ticket_service"),
            *("--channel", "ticket_commands", "--app", "tests.redis.apps:Recorder"),
            *("--prefix", prefix, "--until-empty", *flags),
        ],
        cwd=ROOT,
        env={**ENV, "TOOLKIT_TEST_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


async def test_a_channel_moved_with_a_backlog_loses_nothing(
    tmp_path: Path, redis_url: str, prefix: str, new_redis: RedisServer
) -> None:
    old = Bindings(pipes={"default": redis_url})
    new = Bindings(
        pipes={"default": redis_url, "new": new_redis.url}, channels={"ticket_commands": "new"}
    )
    sent: list[str] = []
    for bindings in (old, new):  # the publishers' configuration changes between the two
        pipes = Pipes(bindings, PipeSettings(prefix=prefix))
        batch = [ticket_create(n) for n in range(50)]
        await pipes.send("ticket_commands", batch)
        sent += [e.headers.message_id for e in batch]
        await pipes.close()

    log = tmp_path / "handled"
    # Consumers on the new pipe, and one draining the old pipe until nothing is left.
    drain(log, prefix, "--pipe", f"new={new_redis.url}", "--bind", "ticket_commands=new")
    assert len(read_log(log)) == 50
    drain(log, prefix, "--url", redis_url)
    handled = read_log(log)
    assert sorted(mid for mid, _ in handled) == sorted(sent)
    assert all(count == 1 for _, count in handled)
