"""What only the in-memory transport has to get right: bounded memory, its defaults, and
the shortcut of its wire round trip (envelopes the trip would not change skip it)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.channels.suite.helpers import envelope
from toolkit import Envelope, Headers, InMemoryTransport, WireError
from toolkit.channels.memory.wire import unchanged_by_wire, wire_fields
from toolkit.channels.redis import ChannelOptions


def test_the_default_size_limit_is_the_redis_one() -> None:
    assert InMemoryTransport().max_message_bytes == ChannelOptions().max_message_bytes


async def test_a_long_run_keeps_a_bounded_history() -> None:
    transport = InMemoryTransport(history=100)
    fast = await transport.subscribe("ch", "fast", "c1")
    slow = await transport.subscribe("ch", "slow", "c1")
    sent: list[Envelope] = []
    for _ in range(100):
        batch = [envelope() for _ in range(500)]
        sent.extend(batch)
        await transport.send("ch", batch)
        await fast.ack(await fast.receive(500, 0))
        await slow.ack(await slow.receive(500, 0))
    assert len(sent) == 50_000
    # Acknowledged by every group: at most the history and one trimming step are kept.
    bound = 100 + 1024 + 500
    assert transport.stored("ch") <= bound
    kept = transport.messages("ch")
    assert 100 <= len(kept) <= bound
    assert kept == sent[-len(kept) :]
    # A message a group has not acknowledged holds back the log from there on.
    await transport.send("ch", [envelope()])
    held = await slow.receive(1, 0)
    for _ in range(10):
        await transport.send("ch", [envelope() for _ in range(500)])
        await fast.ack(await fast.receive(500, 0))
        await slow.ack(await slow.receive(500, 0))
    assert transport.stored("ch") > 5_000
    assert transport.pending("ch", "slow") == [held[0].envelope]
    await slow.ack(held)
    await transport.send("ch", [envelope() for _ in range(2_000)])
    assert transport.stored("ch") <= bound + 2_000


async def test_a_channel_nobody_consumes_yet_keeps_everything() -> None:
    transport = InMemoryTransport(history=10)
    sent = [envelope() for _ in range(3_000)]
    for i in range(0, 3_000, 100):
        await transport.send("ch", sent[i : i + 100])
    sub = await transport.subscribe("ch", "first", "c1")
    got = await sub.receive(5_000, 0)
    assert [d.envelope for d in got] == sent


async def test_messages_shows_what_consumers_would_receive() -> None:
    transport = InMemoryTransport()
    plain, altered = envelope(), envelope(correlation_id="", metadata={"a": "b"})
    await transport.send("ch", [plain, altered, envelope(metadata={"n": 1})])  # type: ignore[dict-item]
    transport.add_raw("ch", {"message_id": "m", "body": "{}"})  # invalid: left out
    shown = transport.messages("ch")
    assert shown[0] is plain
    assert shown[1:] == [Envelope.from_fields(wire_fields(altered))]
    assert shown[1].headers.correlation_id == altered.headers.message_id


texts = st.one_of(
    st.sampled_from(["", "user.registered", "ticket_service", "application/json", "m-1"]),
    st.text(max_size=6),
    st.sampled_from(["caf\u00e9", "\ud800", 5, None]),
)
headers = st.builds(
    Headers,
    message_id=texts,
    routing_key=texts,
    kind=st.sampled_from(["event", "command", "query", 1]),
    source_service=texts,
    timestamp_ms=st.one_of(st.integers(-(2**63), 2**63), st.sampled_from([1.5, "1", True])),
    target_service=texts,
    content_type=texts,
    correlation_id=texts,
    causation_id=texts,
    metadata=st.one_of(
        st.just({}),
        st.none(),
        st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers())),
    ),
)
bodies = st.one_of(st.binary(max_size=8), st.just(bytearray(b"{}")), st.just("{}"))


@settings(max_examples=400, deadline=None)
@given(headers, bodies)
def test_the_shortcut_is_taken_only_where_the_round_trip_changes_nothing(
    h: Headers, body: Any
) -> None:
    sent = Envelope(h, body)
    if not unchanged_by_wire(sent):
        return
    assert Envelope.from_fields(wire_fields(sent)) == sent


@settings(max_examples=200, deadline=None)
@given(headers, bodies)
def test_the_transport_treats_every_envelope_as_its_wire_form_reads_back(
    h: Headers, body: Any
) -> None:
    """Sent, then received: the envelope read back from its wire form, or the same
    dead-letter reason, or the same error at send (the shortcut changes none of it)."""
    sent = Envelope(h, body)
    try:
        expected: Envelope | str = Envelope.from_fields(wire_fields(sent))
    except WireError as exc:
        expected = f"invalid envelope: {exc}"
    except Exception as exc:
        expected = type(exc).__name__
    assert asyncio.run(_send_and_receive(sent)) == expected


async def _send_and_receive(sent: Envelope) -> Envelope | str:
    transport = InMemoryTransport()
    sub = await transport.subscribe("ch", "svc", "c1")
    try:
        await transport.send("ch", [sent])
    except Exception as exc:
        assert transport.stored("ch") == 0
        return type(exc).__name__
    got = await sub.receive(10, 0)
    if got:
        return got[0].envelope
    [dead] = await transport.dead_letters("ch")
    return dead.reason


async def test_a_send_from_a_worker_thread_wakes_the_waiting_consumer() -> None:
    # A synchronous handler in a worker thread publishing through the synchronous
    # publisher: the consumer waiting on the loop must wake, not sleep out its timeout.
    transport = InMemoryTransport()
    subscription = await transport.subscribe("x", "g", "c")
    receiving = asyncio.create_task(subscription.receive(10, timeout=30.0))
    await asyncio.sleep(0.05)  # the consumer is now waiting
    sent = envelope()

    # A plain thread: nothing else (as asyncio.to_thread's own completion would) wakes the loop.
    def later() -> None:
        time.sleep(0.2)  # the loop is asleep in its selector by then
        transport.send_sync("x", [sent])

    thread = threading.Thread(target=later)
    thread.start()
    done, _ = await asyncio.wait({receiving}, timeout=5.0)
    thread.join()
    assert receiving in done, "the consumer slept through a send from another thread"
    [delivery] = receiving.result()
    assert delivery.envelope == sent
