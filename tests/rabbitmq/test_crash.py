"""At-least-once under crashes on RabbitMQ: `toolkit run` consumer processes killed with
SIGKILL mid-batch (the broker requeues what their connection held), then a drain; and
scheduled messages through such kills and a broker restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.pipes.crash import (
    CHANNEL,
    GROUP,
    kill_consumers_repeatedly,
    percentile,
    read_times,
    scheduled_through_kills_and_a_restart,
)
from tests.rabbitmq.server import RabbitNode
from tests.redis.messages import ticket_create
from toolkit.channels.rabbitmq import RabbitTransport
from toolkit.channels.rabbitmq.names import scheduled_level
from toolkit.channels.rabbitmq.schedule import LEVEL_MS


def test_consumers_killed_mid_batch_lose_nothing(
    amqp_url: str, prefix: str, tmp_path: Path
) -> None:
    async def left() -> int:
        transport = RabbitTransport(amqp_url, prefix=prefix)
        try:
            length = await transport.queue_length(transport.names(CHANNEL).queue(GROUP))
            return -1 if length is None else length
        finally:
            await transport.close()

    sent = {CHANNEL: [ticket_create(i) for i in range(20_000)]}
    # Every consumer is gone at the end: anything unacknowledged would be ready again.
    print(
        kill_consumers_repeatedly(
            amqp_url, prefix, tmp_path, sent, left=lambda: asyncio.run(left())
        )
    )


def test_scheduled_messages_through_consumer_kills_and_a_broker_restart(
    node: RabbitNode, tmp_path: Path
) -> None:
    """Issue 12: 10,000 messages due over 10 s in the cascade of wait queues, consumers
    SIGKILLed meanwhile and the broker restarted (SIGTERM: test_restart.py says why):
    each handled, none before its due time. Prints the lateness, and apart that of the
    messages due before the broker went down (docs/delivery.md#scheduled-messages)."""
    prefix = "sched"
    down: list[float] = []

    def restart() -> None:
        down.append(time.time() * 1000)
        node.terminate()
        time.sleep(0.5)
        node.start()
        down.append(time.time() * 1000)

    async def left() -> int:
        """What is still in the group's queue or in any level of the cascade."""
        transport = RabbitTransport(node.url, prefix=prefix)
        try:
            queues = [transport.names(CHANNEL).queue(GROUP)]
            queues += [scheduled_level(prefix, level) for level in range(len(LEVEL_MS))]
            return sum([await transport.queue_length(queue) or 0 for queue in queues])
        finally:
            await transport.close()

    run = scheduled_through_kills_and_a_restart(
        node.url, prefix, tmp_path, restart=restart, left=lambda: asyncio.run(left())
    )
    print(run, f"broker away {down[1] - down[0]:.0f} ms")
    first: dict[str, tuple[int, int]] = {}
    for mid, _, at, due in read_times(tmp_path / "handled.log"):
        first.setdefault(mid, (at, due))
    before = [at - due for at, due in first.values() if due < down[0]]
    # The broker's word that it expired messages before their route was back (the
    # dead-letter worker then retries: tests/rabbitmq/server.py).
    stalled = sum(
        log.read_text(errors="replace").count("Cannot forward any dead-letter")
        for log in (node.directory / "log").glob("*.log")
    )
    print(
        f"due before the restart: {len(before)}, lateness p50 {percentile(before, 50):.0f} ms, "
        f"p99 {percentile(before, 99):.0f} ms; cascade levels stalled at boot: {stalled}"
    )
