"""At-least-once under crashes on RabbitMQ: `toolkit run` consumer processes killed with
SIGKILL mid-batch (the broker requeues what their connection held), then a drain."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.pipes.crash import CHANNEL, GROUP, kill_consumers_repeatedly
from tests.redis.messages import ticket_create
from toolkit.channels.rabbitmq import RabbitTransport


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
