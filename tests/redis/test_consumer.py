"""The consumer on Redis (and, where the behaviour is shared, in memory): retries,
dead letters, poison input, hand-written entries, work sharing, recovery."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from tests.redis.server import RedisServer
from toolkit import Consumer, InMemoryTransport, RetryPolicy, Transport
from toolkit.channels.redis import RedisTransport

CHANNEL = "ticket_commands"
FAST_RETRY = RetryPolicy(attempts=3, base=0.05, cap=0.2, jitter=0)


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def fields_as_stored(fields: dict[str, Any]) -> dict[str, Any]:
    """Dead letters keep the raw fields: str names, bytes values."""
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}


class Running:
    """A consumer running in a task until the test leaves the ``async with``."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Consumer:
        await self.consumer.subscription()
        self.task = asyncio.create_task(self.consumer.run())
        return self.consumer

    async def __aexit__(self, *exc: object) -> None:
        self.consumer.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)
        await self.consumer.close()


@pytest.fixture(params=["memory", "redis"])
async def any_transport(request: pytest.FixtureRequest, make_transport: Any) -> Transport:
    if request.param == "memory":
        return InMemoryTransport()
    transport: RedisTransport = make_transport(visibility_timeout=1.0)
    return transport


async def test_failing_handler_is_retried_without_blocking_others(any_transport: Transport) -> None:
    failures: dict[str, int] = {}

    def flaky(message: Any, meta: Any) -> None:
        if message.subject == "flaky" and failures.get(meta.message_id, 0) < 2:
            failures[meta.message_id] = failures.get(meta.message_id, 0) + 1
            raise ConnectionError("downstream unavailable")

    handlers = Memory(flaky)
    consumer = Consumer(any_transport, CHANNEL, ticket_service.bind(handlers), retry=FAST_RETRY)
    flaky_msg = ticket_create(
        body=b'{"ticket_id":"7d0e3f5e-8f63-4a55-b8a1-0f7e2ea7a0b1","subject":"flaky","requester_email":"x@y.z"}'
    )
    others = [ticket_create(i) for i in range(5)]
    async with Running(consumer):
        await any_transport.send(CHANNEL, [flaky_msg, *others])
        await wait_for(lambda: flaky_msg.headers.message_id in handlers.ids)
    ids = handlers.ids
    # The others went through while the flaky one waited for its retries.
    assert ids.index(others[-1].headers.message_id) < ids.index(flaky_msg.headers.message_id)
    flaky_delivery = handlers.deliveries[ids.index(flaky_msg.headers.message_id)]
    assert flaky_delivery.delivery_count == 3
    assert consumer.stats.retried == 2 and consumer.stats.handled == 6


async def test_handler_failing_every_attempt_is_dead_lettered_with_the_error(
    any_transport: Transport,
) -> None:
    def broken(message: Any, meta: Any) -> None:
        raise ValueError(f"cannot open {message.subject}")

    consumer = Consumer(
        any_transport, CHANNEL, ticket_service.bind(Memory(broken)), retry=FAST_RETRY
    )
    sent = ticket_create(1, metadata={"tenant": "t1"})
    async with Running(consumer):
        await any_transport.send(CHANNEL, [sent])
        await wait_for(lambda: consumer.stats.failed == 1)
    assert consumer.stats.retried == 2
    dead = await any_transport.dead_letters(CHANNEL)  # type: ignore[attr-defined]
    assert len(dead) == 1
    letter = dead[0]
    assert letter.envelope == sent
    assert letter.group == "ticket_service"
    assert letter.reason.startswith("handler raised ValueError: cannot open ticket 1")
    assert letter.details["error_type"] == "builtins.ValueError"
    assert letter.details["error_message"] == "cannot open ticket 1"
    assert "Traceback" in letter.details["traceback"] and "broken" in letter.details["traceback"]
    assert letter.details["attempts"] == "3"
    assert letter.details["channel"] == CHANNEL
    assert letter.fields["metadata"] in ('{"tenant":"t1"}', b'{"tenant":"t1"}')


async def test_replayed_dead_letter_is_handled_with_a_fresh_attempt_count(
    any_transport: Transport,
) -> None:
    broken = True

    def maybe(message: Any, meta: Any) -> None:
        if broken:
            raise RuntimeError("not yet")

    handlers = Memory(maybe)
    consumer = Consumer(any_transport, CHANNEL, ticket_service.bind(handlers), retry=FAST_RETRY)
    sent = ticket_create()
    async with Running(consumer):
        await any_transport.send(CHANNEL, [sent])
        await wait_for(lambda: consumer.stats.failed == 1)
        broken = False
        dead = await any_transport.dead_letters(CHANNEL)  # type: ignore[attr-defined]
        assert await any_transport.replay(CHANNEL, [dead[0].dead_letter_id]) == 1  # type: ignore[attr-defined]
        await wait_for(lambda: bool(handlers.deliveries))
    assert handlers.deliveries[0].message_id == sent.headers.message_id
    assert handlers.deliveries[0].delivery_count == 1
    assert await any_transport.dead_letters(CHANNEL) == []  # type: ignore[attr-defined]


async def test_poison_input_is_dead_lettered_with_its_reason_and_the_consumer_goes_on(
    make_transport: Any,
) -> None:
    transport: RedisTransport = make_transport(max_message_bytes=1024 * 1024)
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), retry=FAST_RETRY)
    good = [ticket_create(i) for i in range(3)]
    headers = {
        "routing_key": "ticket.create",
        "kind": "command",
        "source_service": "php_app",
        "target_service": "ticket_service",
    }
    poison: list[tuple[dict[str, Any], str]] = [
        (
            {"message_id": "p-json", **headers, "body": '{"ticket_id": '},
            "cannot decode 'ticket.create'",
        ),
        (
            {
                "message_id": "p-types",
                **headers,
                "body": '{"ticket_id": 5, "subject": [], "requester_email": 1}',
            },
            "Expected `uuid`, got `int`",
        ),
        (
            {"message_id": "p-key", **headers, "routing_key": "ticket.delete", "body": "{}"},
            "declares no command 'ticket.delete'",
        ),
        (
            {
                "message_id": "p-target",
                **headers,
                "target_service": "billing_service",
                "body": "{}",
            },
            "addressed to service 'billing_service'",
        ),
        (
            {"routing_key": "ticket.create", "body": "{}"},
            "missing header field(s): message_id, kind, source_service",
        ),
        ({"": ""}, "missing header field(s)"),
        ({"body": ""}, "missing header field(s)"),
        (
            {"message_id": "p-kind", **headers, "kind": "query", "body": "{}"},
            "kind must be 'command' or 'event'",
        ),
        ({"message_id": "p-big", **headers, "body": b"x" * (2 * 1024 * 1024)}, "message too large"),
        (
            {"message_id": "p-utf8", **headers, "source_service": b"\xff\xfe", "body": "{}"},
            "not UTF-8",
        ),
    ]
    async with Running(consumer):
        await transport.send(CHANNEL, good[:1])
        for fields, _ in poison:
            await transport.add_raw(CHANNEL, fields)
        # an event nobody here handles: acknowledged and skipped, not dead-lettered
        await transport.add_raw(
            CHANNEL,
            {
                "message_id": "e-1",
                "routing_key": "order.shipped",
                "kind": "event",
                "source_service": "x",
                "body": "{}",
            },
        )
        await transport.send(CHANNEL, good[1:])
        await wait_for(lambda: len(handlers.deliveries) == 3)
        await wait_for(lambda: consumer.stats.skipped == 1)
    assert handlers.ids == [e.headers.message_id for e in good]
    dead = await transport.dead_letters(CHANNEL)
    assert len(dead) == len(poison)
    unmatched = list(dead)
    for fields, reason in poison:
        match = next(
            d
            for d in unmatched
            if reason in d.reason
            and d.fields.get("message_id") == fields_as_stored(fields).get("message_id")
        )
        unmatched.remove(match)
    assert await transport.pending_count(CHANNEL, "ticket_service") == 0


async def test_entry_written_with_redis_cli_is_handled(
    make_transport: Any, redis_server: RedisServer, prefix: str
) -> None:
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers))
    async with Running(consumer):
        # Exactly as docs/wire-format.md tells a non-Python program to write it.
        subprocess.run(
            [
                "redis-cli",
                "-p",
                str(redis_server.port),
                "XADD",
                f"{prefix}:{{{CHANNEL}}}",
                "*",
                "message_id",
                "php-0001",
                "routing_key",
                "ticket.create",
                "kind",
                "command",
                "source_service",
                "php_app",
                "target_service",
                "ticket_service",
                "timestamp",
                "1767268800000",
                "metadata",
                '{"tenant":"acme"}',
                "body",
                '{"ticket_id":"0b6c3d5e-2f0a-4c1e-9d3b-5a7e8f9a0b1c","subject":"Printer on fire","requester_email":"it@acme.test","priority":"urgent"}',
            ],
            check=True,
            capture_output=True,
        )
        await wait_for(lambda: bool(handlers.deliveries))
    meta, message = handlers.deliveries[0], handlers.messages[0]
    h = meta.headers
    assert (h.message_id, h.source_service, h.correlation_id, h.timestamp_ms) == (
        "php-0001",
        "php_app",
        "php-0001",
        1767268800000,
    )
    assert h.metadata == {"tenant": "acme"}
    assert message.subject == "Printer on fire" and message.priority.value == "urgent"


async def test_two_consumers_of_one_group_share_the_work_without_double_handling(
    make_transport: Any,
) -> None:
    a_handlers, b_handlers = Memory(), Memory()
    a = Consumer(
        make_transport(), CHANNEL, ticket_service.bind(a_handlers), consumer_name="a", batch_size=20
    )
    b = Consumer(
        make_transport(), CHANNEL, ticket_service.bind(b_handlers), consumer_name="b", batch_size=20
    )
    sender: RedisTransport = make_transport()
    sent = [ticket_create(i) for i in range(2000)]
    async with Running(a), Running(b):
        for i in range(0, len(sent), 100):
            await sender.send(CHANNEL, sent[i : i + 100])
            await asyncio.sleep(0.005)
        await wait_for(lambda: len(a_handlers.ids) + len(b_handlers.ids) >= len(sent))
    ids_a, ids_b = a_handlers.ids, b_handlers.ids
    assert len(set(ids_a)) == len(ids_a) and len(set(ids_b)) == len(ids_b)
    assert not set(ids_a) & set(ids_b)
    assert set(ids_a) | set(ids_b) == {e.headers.message_id for e in sent}
    assert ids_a and ids_b


@pytest.mark.parametrize("delete", ["stream", "group"])
async def test_consumer_recovers_when_its_stream_or_group_is_deleted(
    make_transport: Any, delete: str
) -> None:
    transport: RedisTransport = make_transport()
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), block_timeout=0.5)
    first = [ticket_create(i) for i in range(50)]
    second = [ticket_create(i) for i in range(50)]
    stream = transport.keys(CHANNEL).stream
    async with Running(consumer):
        await transport.send(CHANNEL, first)
        await wait_for(lambda: len(handlers.ids) == 50)
        await asyncio.sleep(0.1)  # the consumer is blocked in XREADGROUP again
        if delete == "stream":
            await transport.redis.delete(stream)
        else:
            await transport.redis.xgroup_destroy(stream, "ticket_service")
        await asyncio.sleep(0.2)
        await transport.send(CHANNEL, second)
        await wait_for(lambda: len(handlers.ids) >= 100)
    # Nothing handled twice: the group came back after the last entry it had read.
    assert handlers.ids == [e.headers.message_id for e in first + second]


async def test_consumer_of_a_stopped_server_backs_off_and_comes_back(tmp_path: Any) -> None:
    server = RedisServer(tmp_path / "r", appendonly=True).start()
    try:
        transport = RedisTransport(server.url, prefix="outage")
        handlers = Memory()
        consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), block_timeout=0.3)
        async with Running(consumer):
            await transport.send(CHANNEL, [ticket_create(0)])
            await wait_for(lambda: len(handlers.ids) == 1)
            server.kill()
            await asyncio.sleep(1.5)  # several failed attempts, each after a pause
            server.start()
            sent = ticket_create(1)
            await transport.send(CHANNEL, [sent])
            await wait_for(lambda: len(handlers.ids) == 2, timeout=15)
        assert handlers.ids[1] == sent.headers.message_id
        await transport.close()
    finally:
        server.stop()
