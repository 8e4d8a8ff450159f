"""The consumer over the transport: retries without blocking others, dead letters with the
error, replays with a fresh attempt count, and poison input dead-lettered with its reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import generated.ticket_service as ticket_service
from tests.channels.suite.helpers import (
    MESSAGE_LIMIT,
    AddRaw,
    Features,
    Running,
    needs,
    wait_for,
)
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, DeadLetterStore, RetryPolicy, Transport

pytestmark = pytest.mark.asyncio

CHANNEL = "ticket_commands"
FAST_RETRY = RetryPolicy(attempts=3, base=0.05, cap=0.2, jitter=0)


def fields_as_stored(fields: dict[str, Any]) -> dict[str, Any]:
    """Dead letters keep the raw fields: str names, bytes values."""
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}


async def test_failing_handler_is_retried_without_blocking_others(
    transport: Transport, features: Features
) -> None:
    needs(features.delayed_retry, "retry later")
    failures: dict[str, int] = {}

    def flaky(message: Any, meta: Any) -> None:
        if message.subject == "flaky" and failures.get(meta.message_id, 0) < 2:
            failures[meta.message_id] = failures.get(meta.message_id, 0) + 1
            raise ConnectionError("downstream unavailable")

    handlers = Memory(flaky)
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), retry=FAST_RETRY)
    flaky_msg = ticket_create(
        body=b'{"ticket_id":"7d0e3f5e-8f63-4a55-b8a1-0f7e2ea7a0b1","subject":"flaky","requester_email":"x@y.z"}'
    )
    others = [ticket_create(i) for i in range(5)]
    async with Running(consumer):
        await transport.send(CHANNEL, [flaky_msg, *others])
        await wait_for(lambda: flaky_msg.headers.message_id in handlers.ids)
    ids = handlers.ids
    # The others went through while the flaky one waited for its retries.
    assert ids.index(others[-1].headers.message_id) < ids.index(flaky_msg.headers.message_id)
    flaky_delivery = handlers.deliveries[ids.index(flaky_msg.headers.message_id)]
    assert flaky_delivery.delivery_count == 3
    assert consumer.stats.retried == 2 and consumer.stats.handled == 6


async def test_handler_failing_every_attempt_is_dead_lettered_with_the_error(
    transport: Transport, store: DeadLetterStore, features: Features
) -> None:
    needs(features.delayed_retry, "retry later")

    def broken(message: Any, meta: Any) -> None:
        raise ValueError(f"cannot open {message.subject}")

    consumer = Consumer(transport, CHANNEL, ticket_service.bind(Memory(broken)), retry=FAST_RETRY)
    sent = ticket_create(1, metadata={"tenant": "t1"})
    async with Running(consumer):
        await transport.send(CHANNEL, [sent])
        await wait_for(lambda: consumer.stats.failed == 1)
    assert consumer.stats.retried == 2
    [letter] = await store.dead_letters(CHANNEL)
    assert letter.envelope == sent
    assert letter.group == "ticket_service"
    assert letter.reason.startswith("handler raised ValueError: cannot open ticket 1")
    assert letter.details["error_type"] == "builtins.ValueError"
    assert letter.details["error_message"] == "cannot open ticket 1"
    assert "Traceback" in letter.details["traceback"] and "broken" in letter.details["traceback"]
    assert letter.details["attempts"] == "3"
    assert letter.details["channel"] == CHANNEL
    assert letter.fields["metadata"] == b'{"tenant":"t1"}'


async def test_replayed_dead_letter_is_handled_with_a_fresh_attempt_count(
    transport: Transport, store: DeadLetterStore
) -> None:
    broken = True

    def maybe(message: Any, meta: Any) -> None:
        if broken:
            raise RuntimeError("not yet")

    handlers = Memory(maybe)
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), retry=FAST_RETRY)
    sent = ticket_create()
    async with Running(consumer):
        await transport.send(CHANNEL, [sent])
        await wait_for(lambda: consumer.stats.failed == 1)
        broken = False
        # Counted when decided, stored when the batch is settled: wait for the store.
        dead = await store.dead_letters(CHANNEL)
        while not dead:
            await asyncio.sleep(0.02)
            dead = await store.dead_letters(CHANNEL)
        assert await store.replay(CHANNEL, [dead[0].dead_letter_id]) == 1
        await wait_for(lambda: bool(handlers.deliveries))
    assert handlers.deliveries[0].message_id == sent.headers.message_id
    assert handlers.deliveries[0].delivery_count == 1
    assert await store.dead_letters(CHANNEL) == []


async def test_poison_input_is_dead_lettered_with_its_reason_and_the_consumer_goes_on(
    transport: Transport, store: DeadLetterStore, write_raw: AddRaw, redelivery_wait: float
) -> None:
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
        (
            {"message_id": "p-big", **headers, "body": b"x" * (2 * MESSAGE_LIMIT)},
            "message too large",
        ),
        (
            {"message_id": "p-utf8", **headers, "source_service": b"\xff\xfe", "body": "{}"},
            "not UTF-8",
        ),
    ]
    async with Running(consumer):
        await transport.send(CHANNEL, good[:1])
        for fields, _ in poison:
            await write_raw(CHANNEL, fields)
        # an event nobody here handles: acknowledged and skipped, not dead-lettered
        await write_raw(
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
    dead = await store.dead_letters(CHANNEL)
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
    # Nothing is left pending: nothing comes back.
    await asyncio.sleep(redelivery_wait)
    again = await transport.subscribe(CHANNEL, "ticket_service", "again")
    assert list(await again.receive(10, 0.3)) == []
    await again.close()
