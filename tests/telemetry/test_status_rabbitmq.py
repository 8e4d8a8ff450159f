"""`toolkit status` on a RabbitMQ pipe (its own vhost, a prefix per test): the channels are
reported, not named as without status; the groups are the service map's, pending is `?`
and the consumers are counted, not named (docs/rabbitmq.md#status). And the lag gauges of
the telemetry read a RabbitMQ channel."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.rabbitmq.conftest import amqp_url, rabbit_vhost
from tests.redis.messages import ticket_create
from tests.telemetry.conftest import Otel
from toolkit.channels.rabbitmq import RabbitTransport
from toolkit.cli import main

__all__ = ["amqp_url", "rabbit_vhost"]

CHANNEL = "ticket_commands"


async def fill(transport: RabbitTransport) -> None:
    """ticket_commands: 6 commands for ticket_service; one waits for a retry, one is
    dead-lettered, one acknowledged; legacy_service (not the service map's) got them all."""
    transport.expect_groups(CHANNEL, ["ticket_service", "legacy_service"])
    await transport.send(CHANNEL, [ticket_create(n) for n in range(6)])
    sub = await transport.subscribe(CHANNEL, "ticket_service", "worker-a")
    first, second, third = await sub.receive(3, 1)
    await sub.retry_later(first, 3600)
    await sub.reject(second, "test: bad")
    await sub.ack([third])
    await sub.close()
    # What the closed consumer held goes back to the quorum queue as the broker applies
    # the close (a round or so later).
    for _ in range(50):
        status = await transport.status(CHANNEL)
        if [g.lag for g in status.groups] == [6, 3]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the held messages did not come back: {status}")


async def toolkit(*args: str) -> int:
    """The command line, on a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(args))


async def test_toolkit_status_reports_a_rabbitmq_channel(
    amqp_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    transport = RabbitTransport(amqp_url, prefix=prefix)
    try:
        await fill(transport)
        flags = ("--url", amqp_url, "--prefix", prefix)
        capsys.readouterr()
        assert await toolkit("status", *flags, "--json") == 0
        captured = capsys.readouterr()
        assert "no status from the pipe" not in captured.err, captured.err
        by_name = {c["channel"]: c for c in json.loads(captured.out)["channels"]}
        assert sorted(by_name) == ["billing_events", "ticket_commands", "user_events"]
        tickets = by_name[CHANNEL]
        assert (tickets["length"], tickets["dead_letters"]) == (3 + 1, 1)
        assert tickets["visibility_timeout"] is None and tickets["missing_groups"] == []
        # legacy_service is not the service map's: `toolkit status` cannot find it (AMQP
        # lists no queues), only the groups the service map names.
        [group] = tickets["groups"]
        figures = ("name", "lag", "pending", "pending_known", "retrying", "consumer_count")
        assert [group[f] for f in figures] == ["ticket_service", 3, 0, False, 1, 0]
        assert group["consumers"] == [] and group["oldest_pending_age"] is None
        users = by_name["user_events"]
        assert (users["length"], users["groups"]) == (0, [])
        assert users["missing_groups"] == ["billing_service", "ticket_service"]
        assert await toolkit("status", CHANNEL, *flags) == 0
        table = capsys.readouterr().out
        assert "ticket_commands: 4 entries, 1 dead letter" in table
        [row] = [line for line in table.splitlines() if line.startswith("  ticket_service")]
        assert row.split() == ["ticket_service", "3", "?", "1", "-"]
        [unnamed] = [line for line in table.splitlines() if "unnamed" in line]
        assert unnamed.split() == ["(0", "unnamed)", "ticket_service", "?", "-"]
    finally:
        await transport.delete_declared()
        await transport.close()


ORDERS = (("toolkit.channel", CHANNEL), ("toolkit.group", "ticket_service"))
LEGACY = (("toolkit.channel", CHANNEL), ("toolkit.group", "legacy_service"))


async def test_the_lag_gauges_read_a_rabbitmq_channel(
    otel: Otel, amqp_url: str, prefix: str
) -> None:
    transport = RabbitTransport(amqp_url, prefix=prefix)
    try:
        await fill(transport)
        await otel.telemetry.read_status(transport, CHANNEL)
    finally:
        await transport.delete_declared()
        await transport.close()
    assert otel.points("toolkit.consumer.lag") == {ORDERS: 3, LEGACY: 6}
    assert otel.points("toolkit.consumer.retrying") == {ORDERS: 1, LEGACY: 0}
    # Not known on RabbitMQ: no gauge rather than a 0 that is not true.
    assert otel.points("toolkit.consumer.pending") == {}
