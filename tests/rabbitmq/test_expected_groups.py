"""A stream channel on RabbitMQ: what a publisher sends before any consumer started reaches
every group the service map gives the channel (the bus declares their queues first)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import generated
from generated.user_service import UserRegistered, UserServicePublisher
from toolkit import Consumer
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes


class Handles:
    """Any handler a service asks for: does nothing."""

    def __getattr__(self, name: str) -> Any:
        def handle(message: object, meta: object) -> None:
            return None

        return handle


async def test_events_sent_before_any_consumer_reach_every_group(
    amqp_url: str, prefix: str
) -> None:
    from generated.billing_service import bind as bind_billing
    from generated.ticket_service import bind as bind_tickets

    pipes = Pipes(Bindings(pipes={"default": amqp_url}), PipeSettings(prefix=prefix))
    try:
        publisher = UserServicePublisher(pipes)  # tells the pipe each channel's consumers
        await publisher.publish_user_registered(
            UserRegistered(
                user_id=uuid.uuid4(),
                email="a@b.c",
                full_name="Ann",
                registered_at=datetime.datetime.now(datetime.UTC),
            )
        )
        consumers = generated.SERVICE_MAP.channels["user_events"].consumers
        assert set(consumers) == {"billing_service", "ticket_service"}
        for bind in (bind_billing, bind_tickets):
            stats = await Consumer(pipes, "user_events", bind(Handles())).run(until_empty=True)
            assert stats.received == 1, bind  # billing skips the key: it still gets it
    finally:
        await pipes.close()
