"""Dead letters: reject with a reason and details; list, show, replay (to its group only), purge."""

from __future__ import annotations

import asyncio

import pytest

from tests.channels.suite.helpers import (
    AddRaw,
    Features,
    channel_name,
    drain,
    envelope,
    receive_all,
)
from toolkit import DeadLetterStore, Transport

pytestmark = pytest.mark.asyncio


async def test_rejected_messages_are_dead_lettered_with_the_reason(
    transport: Transport, store: DeadLetterStore, redelivery_wait: float
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    bad, good = envelope(), envelope()
    await transport.send(ch, [bad, good])
    got = await receive_all(sub, 2)
    await sub.reject(got[0], "cannot decode: Expected `int`, got `str`")
    await sub.ack(got[1:])
    await sub.close()
    dead = await store.dead_letters(ch)
    assert len(dead) == 1
    assert dead[0].reason == "cannot decode: Expected `int`, got `str`"
    assert dead[0].group == "svc"
    assert dead[0].envelope == bad
    await asyncio.sleep(redelivery_wait)
    again = await transport.subscribe(ch, "svc", "c2")
    assert list(await again.receive(10, 0.3)) == []
    await again.close()


async def test_a_dead_letter_keeps_the_wire_fields_and_the_details(
    transport: Transport, store: DeadLetterStore
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    sent = envelope(metadata={"tenant": "t1"})
    await transport.send(ch, [sent, envelope()])
    first, second = await receive_all(sub, 2)
    await sub.reject(
        first,
        "handler raised ValueError: no",
        {"error_type": "builtins.ValueError", "attempts": "3"},
    )
    await sub.reject(second, "bad input")
    await sub.close()
    failed, bad = await store.dead_letters(ch)
    # Details given are kept; the channel and the attempts (the delivery count unless given) too.
    assert failed.details["error_type"] == "builtins.ValueError"
    assert failed.details["attempts"] == "3" and bad.details["attempts"] == "1"
    assert failed.details["channel"] == ch == bad.details["channel"]
    # The fields are the wire form, as stored: names as str, values as bytes.
    assert failed.fields == {
        k: v if isinstance(v, bytes) else v.encode() for k, v in sent.to_fields().items()
    }


async def test_a_dead_letter_can_be_looked_up_by_its_id(
    transport: Transport, store: DeadLetterStore
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await transport.send(ch, [envelope(), envelope()])
    for d in await receive_all(sub, 2):
        await sub.reject(d, f"boom {d.message_id}")
    listed = await store.dead_letters(ch)
    shown = await store.dead_letter(ch, listed[1].dead_letter_id)
    assert shown is not None
    assert (shown.dead_letter_id, shown.reason, shown.envelope) == (
        listed[1].dead_letter_id,
        listed[1].reason,
        listed[1].envelope,
    )
    assert await store.dead_letter(ch, "1-1") is None
    await sub.close()


async def test_dead_letters_can_be_filtered_replayed_and_purged(
    transport: Transport, store: DeadLetterStore
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    a, b = envelope("user.registered"), envelope("user.deleted")
    await transport.send(ch, [a, b])
    got = await receive_all(sub, 2)
    for d in got:
        await sub.reject(d, "boom")
    only_deleted = await store.dead_letters(ch, routing_key="user.deleted")
    assert [d.envelope.headers.routing_key for d in only_deleted if d.envelope] == ["user.deleted"]
    assert len(await store.dead_letters(ch, count=1)) == 1
    replayed = await store.replay(ch, [only_deleted[0].dead_letter_id])
    assert replayed == 1
    back = await receive_all(sub, 1)
    assert back[0].message_id == b.headers.message_id
    assert back[0].delivery_count == 1
    await sub.ack(back)
    remaining = await store.dead_letters(ch)
    assert [d.envelope.headers.routing_key for d in remaining if d.envelope] == ["user.registered"]
    assert await store.purge(ch) == 1
    assert await store.dead_letters(ch) == []
    await sub.close()


async def test_a_replayed_dead_letter_goes_only_to_the_group_that_dead_lettered_it(
    transport: Transport, store: DeadLetterStore, features: Features
) -> None:
    ch = channel_name()
    failing = await transport.subscribe(ch, "billing", "c1")
    fine = await transport.subscribe(ch, "audit", "c1")
    sent = envelope()
    await transport.send(ch, [sent])
    await failing.reject((await receive_all(failing, 1))[0], "boom")
    await fine.ack(await receive_all(fine, 1))
    [dead] = await store.dead_letters(ch)
    assert await store.replay(ch, [dead.dead_letter_id]) == 1
    back = await receive_all(failing, 1)
    assert [(d.message_id, d.delivery_count) for d in back] == [(sent.headers.message_id, 1)]
    await failing.ack(back)
    assert list(await fine.receive(10, 0.3)) == []  # audit handled it already
    late = await transport.subscribe(ch, "late", "c1")  # a group made later gets the original only
    history = [sent.headers.message_id] if features.late_groups_see_history else []
    assert await drain(late, 0.6) == history
    assert await store.dead_letters(ch) == []
    for sub in (failing, fine, late):
        await sub.close()


async def test_dead_letters_that_are_not_envelopes_stay_when_replayed(
    transport: Transport, store: DeadLetterStore, write_raw: AddRaw
) -> None:
    ch = channel_name()
    sub = await transport.subscribe(ch, "svc", "c1")
    await write_raw(ch, {"routing_key": "user.registered", "body": "{}"})
    assert list(await sub.receive(10, 0.3)) == []
    [dead] = await store.dead_letters(ch)
    assert dead.envelope is None
    assert await store.replay(ch, [dead.dead_letter_id]) == 0
    assert [d.dead_letter_id for d in await store.dead_letters(ch)] == [dead.dead_letter_id]
    await sub.close()
