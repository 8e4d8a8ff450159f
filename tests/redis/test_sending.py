"""Sending on Redis when a channel fails: each send settles on its own reply, a publish
to several channels says which stored it, and a retry can keep the message id."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.exceptions import ResponseError

from generated.ticket_service import CreateTicket
from generated.user_service import UserServicePublisher
from tests.redis.messages import ticket_create
from toolkit import (
    ChannelSpec,
    DistributedBus,
    EventRoute,
    PartialPublishError,
    ServiceMap,
    SyncDistributedBus,
    UnknownServiceError,
)
from toolkit.channels.redis import RedisTransport, SyncRedisTransport
from toolkit.channels.redis.entries import pairs

#: ``audit.*`` events of ``ledger`` go to three channels, one subscriber each
SERVICE_MAP = ServiceMap(
    channels=[
        ChannelSpec("alpha", "stream", ("a_service",)),
        ChannelSpec("beta", "stream", ("b_service",)),
        ChannelSpec("gamma", "queue", ("c_service",)),
    ],
    command_routes={"c_service": "gamma"},
    event_routes=[
        EventRoute("alpha", "a_service", ("audit.*",)),
        EventRoute("beta", "b_service", ("audit.*",)),
        EventRoute("gamma", "c_service", ("audit.*",)),
    ],
    events={"audit.entry": "ledger"},
)


async def break_channel(transport: RedisTransport, channel: str) -> None:
    """A key of the wrong type where the channel's stream belongs: every XADD gets WRONGTYPE."""
    await transport.redis.set(transport.keys(channel).stream, "not a stream")


async def stored_ids(transport: RedisTransport, channel: str) -> list[str]:
    # The transport's client reads XRANGE raw: flat field lists.
    entries = await transport.redis.xrange(transport.keys(channel).stream)
    return [pairs(flat)[b"message_id"].decode() for _, flat in entries]


async def test_concurrent_sends_fail_only_where_their_channel_failed(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport()
    await break_channel(transport, "broken")
    sends = [("good" if i % 3 else "broken", ticket_create(i)) for i in range(30)]
    # Issued together: coalesced into one round trip, one command per channel.
    outcomes = await asyncio.gather(
        *(transport.send(channel, [envelope]) for channel, envelope in sends),
        return_exceptions=True,
    )
    for (channel, _), outcome in zip(sends, outcomes, strict=True):
        if channel == "good":
            assert outcome is None
        else:
            assert isinstance(outcome, ResponseError)
            assert str(outcome).startswith("WRONGTYPE") and "'broken'" in str(outcome)
    assert await stored_ids(transport, "good") == [
        e.headers.message_id for c, e in sends if c == "good"
    ]


async def test_event_stored_on_some_channels_says_which_and_a_retry_keeps_its_id(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport()
    bus = DistributedBus("ledger", SERVICE_MAP, transport)
    await break_channel(transport, "beta")
    with pytest.raises(PartialPublishError) as caught:
        await bus.publish_event("audit.entry", {"n": 1})
    error = caught.value
    assert error.stored == ("alpha", "gamma") and list(error.failed) == ["beta"]
    assert isinstance(error.failed["beta"], ResponseError)
    assert error.__cause__ is error.failed["beta"]
    assert "stored on alpha, gamma but not on beta" in str(error)
    assert await stored_ids(transport, "alpha") == [error.message_id]
    assert await stored_ids(transport, "gamma") == [error.message_id]

    await transport.redis.delete(transport.keys("beta").stream)
    result = await bus.publish_event("audit.entry", {"n": 1}, message_id=error.message_id)
    assert result.message_id == error.message_id
    assert result.channels == ("alpha", "beta", "gamma")
    assert await stored_ids(transport, "beta") == [error.message_id]

    # Stored nowhere: the channel's own error, as for a single channel.
    for channel in ("alpha", "beta", "gamma"):
        await transport.redis.delete(transport.keys(channel).stream)
        await break_channel(transport, channel)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await bus.publish_event("audit.entry", {"n": 2})


async def test_batch_publish_to_several_channels_lists_every_id(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    bus = DistributedBus("ledger", SERVICE_MAP, transport)
    await break_channel(transport, "gamma")
    with pytest.raises(PartialPublishError) as caught:
        await bus.publish_events("audit.entry", [{"n": i} for i in range(5)])
    error = caught.value
    assert error.stored == ("alpha", "beta") and list(error.failed) == ["gamma"]
    assert await stored_ids(transport, "beta") == list(error.message_ids)
    assert error.message_id == error.message_ids[0] and len(set(error.message_ids)) == 5


async def test_sync_bus_reports_partial_publishes_and_reuses_ids(
    redis_url: str, prefix: str
) -> None:
    transport = SyncRedisTransport(redis_url, prefix=prefix)
    bus = SyncDistributedBus("ledger", SERVICE_MAP, transport)
    transport.redis.set(transport.keys("alpha").stream, "not a stream")
    with pytest.raises(PartialPublishError) as caught:
        bus.publish_event("audit.entry", {"n": 1})
    assert caught.value.stored == ("beta", "gamma") and list(caught.value.failed) == ["alpha"]
    transport.redis.delete(transport.keys("alpha").stream)
    again = bus.publish_event("audit.entry", {"n": 1}, message_id=caught.value.message_id)
    assert again.message_id == caught.value.message_id
    command_id = bus.send_command("c_service", "c.do", {"x": 1}, message_id="order-42-attempt")
    assert command_id == "order-42-attempt"
    with pytest.raises(ValueError, match="non-empty string"):
        bus.send_command("c_service", "c.do", {"x": 1}, message_id="")
    with pytest.raises(UnknownServiceError, match="no service 'storefront' in the service map"):
        SyncDistributedBus("storefront", SERVICE_MAP, transport)
    transport.close()


async def test_command_retried_after_a_failure_keeps_its_id(make_transport: Any) -> None:
    transport: RedisTransport = make_transport()
    bus = DistributedBus("ledger", SERVICE_MAP, transport)
    await break_channel(transport, "gamma")
    with pytest.raises(ResponseError):
        await bus.send_command("c_service", "c.do", {"x": 1}, message_id="pay-7")
    await transport.redis.delete(transport.keys("gamma").stream)
    assert await bus.send_command("c_service", "c.do", {"x": 1}, message_id="pay-7") == "pay-7"
    assert await stored_ids(transport, "gamma") == ["pay-7"]


async def test_a_generated_publisher_sends_with_the_callers_message_id(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport()
    users = UserServicePublisher(transport)
    command = CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="a@b.c")
    await break_channel(transport, "ticket_commands")
    with pytest.raises(ResponseError):
        await users.send_ticket_create(command, message_id="req-42")
    await transport.redis.delete(transport.keys("ticket_commands").stream)
    assert await users.send_ticket_create(command, message_id="req-42") == "req-42"
    assert await stored_ids(transport, "ticket_commands") == ["req-42"]


async def test_a_lone_publish_costs_no_task_per_write(make_transport: Any) -> None:
    # redis-py wraps each write in asyncio.wait_for (a task) when socket_timeout is set;
    # the transport's connections bound writes without one (connection._timed_writes).
    transport: RedisTransport = make_transport()
    publisher = UserServicePublisher(transport)
    event = _user_registered()
    await publisher.publish_user_registered(event)  # connected, script loaded
    loop = asyncio.get_running_loop()
    made: list[object] = []
    default = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        if default is not None:
            return default(loop, coro, **kwargs)  # type: ignore[arg-type]
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        for _ in range(10):
            await publisher.publish_user_registered(event)
    finally:
        loop.set_task_factory(default)
    # One writer task per publish (it drains the outbox), none per socket write.
    assert len(made) == 10, [getattr(c, "__qualname__", c) for c in made]


def _user_registered() -> Any:
    import datetime

    from generated.user_service import UserRegistered

    return UserRegistered(
        user_id=uuid.uuid4(),
        email="ann@example.com",
        full_name="Ann",
        registered_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )


async def test_sends_and_reads_keep_their_connection_between_round_trips(
    make_transport: Any,
) -> None:
    # Checking a connection out of redis-py's pool and back in per round trip costs
    # about as much CPU as the round trip (connection.HeldConnection).
    transport: RedisTransport = make_transport()
    publisher = UserServicePublisher(transport)
    event = _user_registered()
    sub = await transport.subscribe("user_events", "ticket_service", "c1")
    await publisher.publish_user_registered(event)
    await sub.ack(await sub.receive(10, 0))
    pool = transport.redis.connection_pool
    taken = 0
    get_connection = pool.get_connection

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal taken
        taken += 1
        return await get_connection(*args, **kwargs)

    pool.get_connection = counting  # type: ignore[method-assign]
    for _ in range(5):
        await publisher.publish_user_registered(event)
        deliveries = await sub.receive(10, 0)
        assert len(deliveries) == 1
        await sub.ack(deliveries)
    assert taken == 0
    await sub.close()
