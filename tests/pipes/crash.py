"""The SIGKILL crash test every pipe passes: ``toolkit run`` consumers killed mid-batch.

(:func:`scheduled_through_kills_and_a_restart` is its scheduled-messages variant:
messages due over a few seconds, consumers killed and the server restarted meanwhile.)

Publish the messages, run two consumer processes (``toolkit run`` with the
test's ``--url`` and ``--prefix``), SIGKILL one of them 8 times while work is
in progress (starting another each time), wait until every message has been
handled, stop the rest gracefully. Then: every message handled, duplicates
only from the batches in flight at the kills (each of them a redelivery), and
nothing left on the channel.

``deduplicate=WINDOW`` runs the consumers with ``--deduplicate WINDOW`` and
publishes a copy (same message id) of every tenth message besides: the copies
are never handled, and duplicates shrink from the batches in flight to the
crash windows (the record step in hand at each kill: ``RECORD_EVERY``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.redis.messages import ticket_create
from toolkit import Envelope
from toolkit.deduplication import RECORD_EVERY
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "ticket_commands"
GROUP = "ticket_service"
BATCH = 50
KILLS = 8


def read_log(path: Path) -> list[tuple[str, int]]:
    """``tests.redis.apps.Recorder``'s log: (message id, delivery count) per handling."""
    return [(mid, int(count)) for mid, count, *_ in (line.split() for line in _lines(path))]


def _lines(path: Path) -> list[str]:
    """The complete lines of a log that consumers may be appending to: a line being
    written as it is read (no newline yet) is left for the next read."""
    if not path.exists():
        return []
    return [line for line in path.read_text().split("\n")[:-1] if line]


def read_times(path: Path) -> list[tuple[str, int, int, int]]:
    """The log of a ``Recorder`` run with ``TOOLKIT_TEST_TIMES=1``: (message id, delivery
    count, wall-clock ms when handled, the message's deliver_at ms) per handling."""
    rows = (line.split() for line in _lines(path))
    return [(mid, int(count), int(at), int(due)) for mid, count, at, due in rows]


def consumer_command(url: str, prefix: str, app: str, *options: str, host: bool) -> list[str]:
    """``toolkit run`` of the ticket service: one channel, or (``host``) all of them;
    ``app``: a class of tests.redis.apps, or ``module:name``."""
    target = [GROUP] if host else [CHANNEL, "--service", GROUP]
    app = app if ":" in app else f"tests.redis.apps:{app}"
    return [
        *(sys.executable, "-m", "toolkit", "run", *target),
        *("--app", app, "--url", url, "--prefix", prefix, *options),
    ]


def start_consumer(
    url: str,
    prefix: str,
    log: Path,
    name: str,
    flags: Sequence[str],
    *,
    host: bool,
    env: Mapping[str, str] | None = None,
    app: str = "Recorder",
) -> subprocess.Popen[bytes]:
    """A ``toolkit run`` process of the ``Recorder`` app (or ``app``); ``env``: more variables."""
    variables = {
        **os.environ,
        "TOOLKIT_TEST_LOG": str(log),
        "TOOLKIT_TEST_DELAY": "0.0004",
        **(env or {}),
    }
    options = ("--consumer-name", name, "--batch-size", str(BATCH), *flags)
    return subprocess.Popen(
        consumer_command(url, prefix, app, *options, host=host),
        cwd=ROOT,
        env=variables,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def publish(url: str, prefix: str, sent: dict[str, list[Envelope]]) -> None:
    """Create the group of each channel (as its first consumer would), then publish."""
    pipes = Pipes(Bindings(pipes={"default": url}), PipeSettings(prefix=prefix))
    try:
        for channel, envelopes in sent.items():
            await (await pipes.subscribe(channel, GROUP, "publisher")).close()
            for i in range(0, len(envelopes), 1000):
                await pipes.send(channel, envelopes[i : i + 1000])
    finally:
        await pipes.close()


def drain(
    running: Sequence[subprocess.Popen[bytes]], log: Path, total: int, deadline: float
) -> None:
    """Wait until ``total`` distinct messages are in the log, then stop the consumers
    gracefully: each must exit 0."""
    while len({mid for mid, _ in read_log(log)}) < total:
        assert time.monotonic() < deadline, "messages still missing"
        time.sleep(0.1)
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        code = process.wait(15)
        assert code == 0, (code, process.stderr.read().decode() if process.stderr else "")


def kill_all(running: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in running:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class CrashRun:
    kills: int
    handlings: int
    duplicates: int
    redelivered: int
    #: copies published with a message id already sent (deduplicate only)
    copies: int = 0


def kill_consumers_repeatedly(
    url: str,
    prefix: str,
    tmp_path: Path,
    sent: dict[str, list[Envelope]],
    *,
    left: Callable[[], int],
    host: bool = False,
    flags: Sequence[str] = (),
    timeout: float = 180,
    deduplicate: str | None = None,
    app: str = "Recorder",
    env: Mapping[str, str] | None = None,
) -> CrashRun:
    """Run the crash test on the pipe at ``url``; ``left()`` counts what is still on the
    channels afterwards (pending, ready or leased), which must be 0. ``app`` and ``env``:
    another app logging as ``Recorder`` does, with more variables."""
    log = tmp_path / "handled.log"
    every = [e for envelopes in sent.values() for e in envelopes]
    total = len(every)
    copies = 0
    if deduplicate is not None:
        flags = (*flags, "--deduplicate", deduplicate)
        # A copy of every tenth message, a few hundred messages later (another batch).
        with_copies = {}
        for channel, envelopes in sent.items():
            out = list(envelopes)
            for i in range(0, len(envelopes), 10):
                out.insert(min(len(out), i + i // 10 + 300), envelopes[i])
            copies += len(out) - len(envelopes)
            with_copies[channel] = out
        sent = with_copies
    asyncio.run(publish(url, prefix, sent))
    rng = random.Random(7)

    def consumer(n: int) -> subprocess.Popen[bytes]:
        return start_consumer(url, prefix, log, f"c{n}", flags, host=host, env=env, app=app)

    running = [consumer(0), consumer(1)]
    started, kills = 2, 0
    try:
        deadline = time.monotonic() + timeout
        while kills < KILLS:
            # Kill only while both are at work, so the victim is mid-batch: wait until
            # the log has grown by a few batches since the last one started.
            mark = len(read_log(log))
            while len(read_log(log)) < mark + 4 * BATCH:
                assert time.monotonic() < deadline, "the consumers handle nothing"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 0.3))
            handled = len(read_log(log))
            assert handled < total, f"all handled after {kills} kills; make the handler slower"
            victim = running.pop(rng.randrange(len(running)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            running.append(consumer(started))
            started += 1
        drain(running, log, total, deadline)
    finally:
        kill_all(running)

    records = read_log(log)
    handled_ids = Counter(mid for mid, _ in records)
    assert set(handled_ids) == {e.headers.message_id for e in every}, "a message was never handled"
    duplicates = len(records) - len(handled_ids)
    # Only messages in flight at a kill (at most one batch, or with deduplication one
    # record step, per channel of a killed consumer) come twice; never a copy...
    in_flight = BATCH if deduplicate is None else RECORD_EVERY
    assert duplicates <= kills * in_flight * len(sent), (duplicates, kills)
    # ...and each of them was a redelivery (delivery count > 1) of one such message.
    redelivered = {mid for mid, count in records if count > 1}
    if deduplicate is None:
        assert {mid for mid, n in handled_ids.items() if n > 1} <= redelivered
        assert redelivered, "no kill caught a batch in flight"
    # (With deduplication, a message handled in the step in hand at a kill may be
    # handled again as its copy, delivery count 1, before its redelivery is skipped.)
    assert left() == 0, "messages left on the channel after the drain"
    return CrashRun(kills, len(records), duplicates, len(redelivered), copies)


@dataclass
class ScheduledRun:
    kills: int
    handlings: int
    duplicates: int
    #: lateness (ms after the due time) of each message's first handling
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def scheduled_through_kills_and_a_restart(
    url: str,
    prefix: str,
    tmp_path: Path,
    *,
    restart: Callable[[], None],
    left: Callable[[], int],
    count: int = 10_000,
    spread: float = 10.0,
    flags: Sequence[str] = (),
    timeout: float = 120,
) -> ScheduledRun:
    """``count`` scheduled messages due over ``spread`` seconds (from 2 s after publishing
    starts, in random order), two ``toolkit run`` consumers, one SIGKILLed every
    ``spread / KILLS`` seconds (another started), the server restarted (``restart()``)
    halfway: every message handled, none before its due time; ``left()`` (what still
    waits, is pending or ready) must be 0 afterwards."""
    log = tmp_path / "handled.log"
    rng = random.Random(12)
    start_ms = time.time_ns() // 1_000_000 + 2000
    dues = [start_ms + int(spread * 1000 * i / count) for i in range(count)]
    rng.shuffle(dues)
    sent = [ticket_create(i, deliver_at_ms=due) for i, due in enumerate(dues)]
    asyncio.run(publish(url, prefix, {CHANNEL: sent}))
    env = {"TOOLKIT_TEST_TIMES": "1"}

    def consumer(n: int) -> subprocess.Popen[bytes]:
        return start_consumer(url, prefix, log, f"c{n}", flags, host=False, env=env)

    running = [consumer(0), consumer(1)]
    started, kills = 2, 0
    try:
        while time.time() * 1000 < start_ms:
            time.sleep(0.05)
        for kill in range(KILLS):
            time.sleep(spread / KILLS * rng.uniform(0.6, 1.0))
            victim = running.pop(rng.randrange(len(running)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            if kill == KILLS // 2:
                restart()
            running.append(consumer(started))
            started += 1
        drain(running, log, count, time.monotonic() + timeout)
    finally:
        kill_all(running)

    records = read_times(log)
    due_of = {e.headers.message_id: e.headers.deliver_at_ms for e in sent}
    assert {mid for mid, *_ in records} == set(due_of), "a scheduled message was never handled"
    early = [(mid, at, due) for mid, _, at, due in records if at < due_of[mid]]
    assert not early, f"{len(early)} handled before due, e.g. {early[:3]}"
    assert all(due == due_of[mid] for mid, _, _, due in records), "deliver_at changed"
    first: dict[str, int] = {}
    for mid, _, at, _ in records:
        first.setdefault(mid, at)
    lateness = [first[mid] - due for mid, due in due_of.items()]
    duplicates = len(records) - len(first)
    # The batches in hand at the kills and at the restart come back, nothing else.
    assert duplicates <= (kills + 2) * BATCH, (duplicates, kills)
    assert left() == 0, "messages left on the channel after the drain"
    return ScheduledRun(
        kills,
        len(records),
        duplicates,
        percentile(lateness, 50),
        percentile(lateness, 99),
        max(lateness),
    )
