"""Redis transport details: key naming, parsing, sync publishing, URLs, trimming."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
import redis
from redis.crc import key_slot

import generated
import generated.ticket_service as ticket_service
from generated.user_service import UserServiceSyncPublisher
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from tests.redis.server import RedisServer
from toolkit import Envelope, SyncDistributedBus, WireError
from toolkit.channels.redis import ChannelKeys, RedisTransport, RedisUnavailable, SyncRedisTransport
from toolkit.channels.redis.entries import parse_entry, parse_positional
from toolkit.runner import Runner, RunOptions

CHANNEL = "ticket_commands"


def test_keys_of_a_channel_share_one_cluster_slot() -> None:
    keys = ChannelKeys("ticket_commands")
    assert keys.stream == "tk:{ticket_commands}"
    assert keys.dead == "tk:{ticket_commands}:dead"
    assert keys.delay("billing_service") == "tk:{ticket_commands}:delay:billing_service"
    slots = {key_slot(k.encode()) for k in (keys.stream, keys.dead, keys.delay("g"))}
    assert slots == {key_slot(b"ticket_commands")}
    with pytest.raises(ValueError, match="must not contain"):
        ChannelKeys("bad{name}")


@pytest.mark.parametrize(
    "fields",
    [
        ticket_create(
            metadata={"a": "b"}, causation_id="c1", content_type="application/json; charset=utf-8"
        ).to_fields(),
        {"message_id": "m", "routing_key": "k", "kind": "event", "source_service": "s", "body": ""},
        {
            "message_id": "m",
            "routing_key": "k",
            "kind": "command",
            "source_service": "s",
            "body": "{}",
        },
        {
            "message_id": "m",
            "routing_key": "k",
            "kind": "event",
            "source_service": "s",
            "body": "{}",
            "timestamp": "x",
        },
        {
            "message_id": "m",
            "routing_key": "k",
            "kind": "event",
            "source_service": "s",
            "body": "{}",
            "metadata": "[1]",
        },
        {
            "message_id": "m",
            "routing_key": "k",
            "kind": "event",
            "source_service": "s",
            "body": "{}",
            "extra": "\xff",
        },
        {
            "message_id": "",
            "routing_key": "k",
            "kind": "event",
            "source_service": "s",
            "body": "{}",
        },
        {
            "message_id": "m",
            "routing_key": "k",
            "kind": "event",
            "source_service": b"\xff",
            "body": "{}",
        },
        {
            "message_id": "m",
            "routing_key": "k",
            "kind": "event",
            "source_service": "s",
            "body": "{}",
            "correlation_id": "",
        },
    ],
)
def test_fast_entry_parsing_agrees_with_the_envelope_codec(fields: dict[str, Any]) -> None:
    raw = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
    try:
        expected: Envelope | str = Envelope.from_fields(raw)
    except WireError as exc:
        expected = str(exc)
    try:
        got: Envelope | str = parse_entry(raw)
    except WireError as exc:
        got = str(exc)
    if isinstance(expected, Envelope) and isinstance(got, Envelope) and "timestamp" not in fields:
        got = msgspec.structs.replace(
            got,
            headers=msgspec.structs.replace(
                got.headers, timestamp_ms=expected.headers.timestamp_ms
            ),
        )
    assert got == expected
    flat = [item for pair in raw.items() for item in pair]
    positional = parse_positional(flat)
    if positional is not None:
        assert (
            msgspec.structs.replace(
                positional, headers=got.headers if isinstance(got, Envelope) else positional.headers
            )
            == got
        )


async def test_sync_publisher_sends_through_redis(redis_url: str, prefix: str) -> None:
    transport = SyncRedisTransport(redis_url, prefix=prefix)
    transport.check()
    publisher = UserServiceSyncPublisher(
        SyncDistributedBus("user_service", generated.SERVICE_MAP, transport)
    )
    command = ticket_service.CreateTicket(
        ticket_id=uuid.uuid4(), subject="sync", requester_email="s@y.nc"
    )
    message_id = publisher.send_ticket_create(command, metadata={"via": "sync"})
    transport.close()

    receiver = RedisTransport(redis_url, prefix=prefix)
    handlers = Memory()
    await Runner(
        receiver, CHANNEL, ticket_service.bind(handlers), RunOptions(until_empty=True)
    ).run()
    await receiver.close()
    assert handlers.ids == [message_id]
    assert handlers.messages[0] == command and handlers.deliveries[0].metadata == {"via": "sync"}


async def test_urls_unix_socket_and_acl_user(redis_server: RedisServer, prefix: str) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    user = f"app{prefix}"
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all")
    admin.close()
    for url in (
        f"unix://{redis_server.socket}?db=0",
        f"redis://{user}:pw@127.0.0.1:{redis_server.port}/0",
    ):
        transport = RedisTransport(url, prefix=prefix)
        await transport.check()
        await transport.send(CHANNEL, [ticket_create()])
        await transport.close()
    wrong = RedisTransport(f"redis://{user}:nope@127.0.0.1:{redis_server.port}/0", prefix=prefix)
    with pytest.raises(RedisUnavailable, match=rf"{user}:\*\*\*@127.0.0.1"):
        await wrong.check()
    await wrong.close()
    sync = SyncRedisTransport("redis://127.0.0.1:1/0")
    with pytest.raises(RedisUnavailable, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"):
        sync.check()


async def test_safe_trimming_keeps_what_any_group_still_needs(make_transport: Any) -> None:
    transport: RedisTransport = make_transport(trim_acknowledged=True, trim_interval=0)
    stream = transport.keys(CHANNEL).stream
    fast = await transport.subscribe(CHANNEL, "fast", "c")
    slow = await transport.subscribe(CHANNEL, "slow", "c")
    await transport.send(CHANNEL, [ticket_create(i) for i in range(1000)])
    got = await fast.receive(1000, 1)
    await fast.ack(got)  # trims, but "slow" has read nothing: all stays
    assert await transport.redis.xlen(stream) == 1000
    held = await slow.receive(600, 1)
    await slow.ack(held[100:])  # the first 100 stay pending
    assert await transport.trim(CHANNEL) == 0
    await slow.ack(held[:100])  # trims (trim_interval=0: at every ack)
    # Approximate trimming removes whole stream nodes, never past what both groups acknowledged.
    assert 400 <= await transport.redis.xlen(stream) < 1000
    rest = await slow.receive(1000, 1)
    assert [d.message_id for d in rest] == [d.message_id for d in got[600:]]


async def test_lossy_max_length_caps_the_stream(make_transport: Any) -> None:
    transport: RedisTransport = make_transport(lossy_max_length=100)
    for _ in range(10):
        await transport.send(CHANNEL, [ticket_create(i) for i in range(100)])
    assert await transport.redis.xlen(transport.keys(CHANNEL).stream) < 300
