"""Housekeeping of a channel's groups: consumers that went away without leaving,
safe trimming from `toolkit run`, and retired groups (`toolkit groups`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    yield c
    c.close()


def consumer_names(client: redis.Redis, stream: str, group: str = GROUP) -> set[str]:
    return {c["name"] for c in client.xinfo_consumers(stream, group)}


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_consumers_gone_without_leaving_are_forgotten_once_they_own_nothing(
    make_transport: Any, client: redis.Redis
) -> None:
    # Consumers that stopped without closing their subscription (as after SIGKILL).
    ghosts: RedisTransport = make_transport(idle_consumer_timeout=None)
    stream = ghosts.keys(CHANNEL).stream
    await ghosts.send(CHANNEL, [ticket_create(i) for i in range(3)])
    for name in ("ghost-acked", "ghost-caller"):
        sub = await ghosts.subscribe(CHANNEL, GROUP, name)
        await sub.ack(await sub.receive(1, 1))
    held = await ghosts.subscribe(CHANNEL, GROUP, "ghost-held")
    [kept] = await held.receive(1, 1)  # never acknowledged: pending
    await asyncio.sleep(0.35)

    forgotten = await ghosts.forget_idle_consumers(CHANNEL, GROUP, idle=0.3, keep="ghost-caller")
    # Neither the caller nor one with a pending message.
    assert forgotten == ["ghost-acked"]
    assert consumer_names(client, stream) == {"ghost-held", "ghost-caller"}

    # A running consumer does it on its own: the held message is reclaimed
    # after the visibility timeout, then its owner owns nothing and goes too.
    handlers = Memory()
    live = Consumer(
        make_transport(idle_consumer_timeout=0.3, visibility_timeout=0.5),
        CHANNEL,
        ticket_service.bind(handlers),
        consumer_name="live",
    )
    task = asyncio.create_task(live.run())
    await wait_for(lambda: consumer_names(client, stream) == {"live"}, timeout=5)
    assert handlers.ids == [kept.message_id]
    await asyncio.sleep(0.5)  # idle past the limit, but it is the one looking
    assert consumer_names(client, stream) == {"live"}
    live.stop()
    await task
    await live.close()


def publish(redis_url: str, prefix: str, channel: str, envelopes: list[Any]) -> list[str]:
    """Send from a transport of its own; the entry ids."""

    async def send() -> list[str]:
        transport = RedisTransport(redis_url, prefix=prefix)
        await transport.send(channel, envelopes)
        entries = await transport.redis.xrange(transport.keys(channel).stream)
        await transport.close()
        return [entry_id.decode() for entry_id, _ in entries]

    return asyncio.run(send())


def run_cli(redis_url: str, prefix: str, channel: str, service: str, *extra: str) -> int:
    return main(
        [
            "run",
            channel,
            "--service",
            service,
            "--app",
            "tests.redis.apps:Memory",
            "--url",
            redis_url,
            "--prefix",
            prefix,
            "--until-empty",
            *extra,
        ]
    )


def test_run_trim_keeps_what_a_group_has_not_read_or_still_has_pending(
    redis_url: str, prefix: str, client: redis.Redis
) -> None:
    # user_events is shared: ticket_service consumes it here, billing_service lags behind.
    events = [
        ticket_create(i, kind="event", routing_key="user.renamed", target_service="")
        for i in range(1000)
    ]
    ids = publish(redis_url, prefix, "user_events", events)
    stream = f"{prefix}:{{user_events}}"

    async def billing_reads_600_and_holds_100() -> None:
        transport = RedisTransport(redis_url, prefix=prefix)
        sub = await transport.subscribe("user_events", "billing_service", "b1")
        got = await sub.receive(600, 1)
        await sub.ack(got[:300] + got[400:])  # 300..399 stay pending
        await transport.close()

    asyncio.run(billing_reads_600_and_holds_100())
    flags = ("--trim", "--trim-interval", "0")
    assert run_cli(redis_url, prefix, "user_events", "ticket_service", *flags) == 0
    left = [entry_id for entry_id, _ in client.xrange(stream)]
    # Everything from billing's oldest pending entry on is still there ...
    assert left[-700:] == ids[300:]
    # ... and what every group has read and acknowledged is gone (whole stream
    # nodes: XTRIM MINID ~ never cuts a node in two).
    assert len(left) <= 1000 - 200


def test_retired_group_is_listed_and_once_removed_no_longer_holds_back_trimming(
    redis_url: str,
    prefix: str,
    client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flags = ["--url", redis_url, "--prefix", prefix]
    stream = f"{prefix}:{{{CHANNEL}}}"
    publish(redis_url, prefix, CHANNEL, [ticket_create(i) for i in range(500)])
    # A service that consumed ticket_commands once and was removed from the schemas.
    client.xgroup_create(stream, "legacy_service", "0")
    assert run_cli(redis_url, prefix, CHANNEL, GROUP, "--trim", "--trim-interval", "0") == 0
    assert client.xlen(stream) == 500  # legacy_service has read nothing: all stays
    assert "group legacy_service on ticket_commands is retired" in caplog.text
    capsys.readouterr()

    assert main(["groups", "list", CHANNEL, *flags]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["CHANNEL", "GROUP", "CONSUMERS", "PENDING", "DELAYED", "LAG", "STATUS"]
    assert rows[1] == [CHANNEL, "legacy_service", "0", "0", "0", "500", "retired"]
    assert rows[2][:2] == [CHANNEL, GROUP] and rows[2][3:] == ["0", "0", "0", "in", "use"]
    assert "1 retired group(s)" in " ".join(rows[3])

    assert main(["groups", "list", *flags]) == 0  # every channel
    assert "legacy_service" in capsys.readouterr().out

    assert main(["groups", "remove", CHANNEL, GROUP, *flags]) == 2
    assert "Pass --force" in capsys.readouterr().err
    assert main(["groups", "remove", CHANNEL, "legacy_service", *flags]) == 0
    assert "removed group legacy_service from ticket_commands" in capsys.readouterr().out
    assert main(["groups", "remove", CHANNEL, "legacy_service", *flags]) == 2
    assert "no group 'legacy_service'" in capsys.readouterr().err

    # Nothing holds trimming back now: the next acknowledgements trim.
    publish(redis_url, prefix, CHANNEL, [ticket_create(i) for i in range(10)])
    assert run_cli(redis_url, prefix, CHANNEL, GROUP, "--trim", "--trim-interval", "0") == 0
    assert client.xlen(stream) < 100
