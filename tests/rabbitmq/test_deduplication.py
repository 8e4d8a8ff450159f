"""Deduplication stays refused on RabbitMQ (no store of handled ids of its own): at
startup, with an error that names the pipe and the doc, also through ``Pipes`` (what
``toolkit run`` uses)."""

from __future__ import annotations

import pytest

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from toolkit import Consumer
from toolkit.consumer import DeduplicationUnsupported
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes


async def test_refused_at_startup_naming_the_pipe_and_the_doc(amqp_url: str, prefix: str) -> None:
    pipes = Pipes(Bindings(pipes={"default": amqp_url}), PipeSettings(prefix=prefix))
    consumer = Consumer(pipes, "ticket_commands", ticket_service.bind(Memory()), deduplicate=60.0)
    try:
        with pytest.raises(DeduplicationUnsupported) as refused:
            await consumer.subscription()
        message = str(refused.value)
        assert "its pipe (RabbitTransport) cannot deduplicate: it keeps no store" in message
        assert message.endswith("see docs/delivery.md#deduplication") and "\n" not in message
    finally:
        await consumer.close()
        await pipes.close()
