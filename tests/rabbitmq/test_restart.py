"""A private RabbitMQ node restarted while a producer sends and a consumer handles: no
message whose send was confirmed is lost, and the consumer rides out the outage
(TransportError, back-off, a new connection) without crashing.

The node is stopped with SIGTERM (RabbitMQ's clean shutdown, what a service manager or
an upgrade does). After a SIGKILL, the single-node RabbitMQ 3.10.8 here left a group's
quorum queue without a leader ("leader not known") for minutes: sends then fail as an
outage (nothing confirmed is lost, nothing flows) until the broker recovers the queue;
docs/rabbitmq.md says so."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import generated.ticket_service as ticket_service
from tests.rabbitmq.server import RabbitNode
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, TransportError
from toolkit.channels.rabbitmq import RabbitTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


async def test_broker_restarted_loses_no_confirmed_message(node: RabbitNode) -> None:
    # A failure, never a hang.
    await asyncio.wait_for(scenario(node), 180)


async def scenario(node: RabbitNode) -> None:
    sent = [ticket_create(i) for i in range(3000)]
    confirmed: list[str] = []
    handlers = Memory()
    publisher = RabbitTransport(node.url, prefix="restart", groups={CHANNEL: [GROUP]})
    transport = RabbitTransport(node.url, prefix="restart")
    consumer = Consumer(
        transport, CHANNEL, ticket_service.bind(handlers), batch_size=50, block_timeout=0.2
    )
    outages = 0

    async def send(batch: list[Any]) -> None:
        nonlocal outages
        while True:
            try:
                await publisher.send(CHANNEL, batch)
            except TransportError:
                outages += 1
                await asyncio.sleep(0.2)
                continue
            confirmed.extend(e.headers.message_id for e in batch)
            return

    try:
        await publisher.check()
        await consumer.subscription()
        task = asyncio.create_task(consumer.run())

        def restart() -> None:
            node.terminate()
            time.sleep(0.5)
            node.start()

        restarting = None
        for i in range(0, len(sent), 100):
            await send(sent[i : i + 100])
            if i == 1500:
                # Sending goes on (and fails, and is retried) while the broker is away.
                restarting = asyncio.ensure_future(asyncio.to_thread(restart))
            await asyncio.sleep(0.01)
        assert restarting is not None
        await restarting
        want = set(confirmed)
        deadline = time.monotonic() + 60
        while not want <= set(handlers.ids):
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, f"missing {len(want - set(handlers.ids))}"
            await asyncio.sleep(0.05)
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await consumer.close()
        assert outages, "the producer never saw the broker down"
        assert want == {e.headers.message_id for e in sent}
        assert await transport.queue_length(transport.names(CHANNEL).queue(GROUP)) == 0
    finally:
        await transport.close()
        await publisher.close()
