"""In-memory publish -> dispatch -> handler, beside a bare msgspec decode-and-call loop.

Both are measured in this run on this machine, in alternating rounds, by the
process's CPU time (the loops never wait, and another program's load on a
shared machine does not count); the ratio is what to compare.
Aims (issues 2 and 14): >= 300,000 messages/s, >= 0.25x the bare loop, and
resident memory flat over 1M messages (``--flat``: RSS after the first tenth
and at the end, so what start-up allocates once is not counted as growth).

    python -m bench.inmemory [--messages N] [--repeat R] [--flat 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import time
import uuid
from collections.abc import Callable

import msgspec

from toolkit import (
    ChannelSpec,
    Consumer,
    Delivery,
    Dispatcher,
    DistributedBus,
    EventRoute,
    InMemoryTransport,
    Route,
    ServiceMap,
)
from toolkit.rss import rss_bytes


class UserRegistered(msgspec.Struct, frozen=True, kw_only=True):
    """The example system's user.registered contract: a small, typical event."""

    user_id: uuid.UUID
    email: str
    full_name: str
    registered_at: datetime.datetime
    plan: str = "free"
    referrer: str | None = None


def event() -> UserRegistered:
    return UserRegistered(
        user_id=uuid.UUID(int=1),
        email="ann@example.com",
        full_name="Ann Example",
        registered_at=datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC),
        plan="pro",
    )


def bare_loop(n: int) -> float:
    """What any consumer must do at least: decode the body into the class, call the handler."""
    body = msgspec.json.encode(event())
    bodies = [body] * n
    decode = msgspec.json.Decoder(UserRegistered).decode
    seen = 0

    def handler(message: UserRegistered) -> None:
        nonlocal seen
        seen += 1

    start = time.process_time()
    for b in bodies:
        handler(decode(b))
    elapsed = time.process_time() - start
    assert seen == n
    return n / elapsed


async def toolkit_loop(
    n: int, batch: int, at_rounds: dict[int, Callable[[], None]] | None = None
) -> float:
    service_map = ServiceMap(
        channels=[ChannelSpec("user_events", "stream", ("ticket_service",))],
        command_routes={},
        # As the example system subscribes: a pattern, with a publisher filter.
        event_routes=[
            EventRoute(
                "user_events", "ticket_service", ("user.*",), include_publishers=("user_service",)
            )
        ],
        events={"user.registered": "user_service"},
    )
    transport = InMemoryTransport()
    bus = DistributedBus("user_service", service_map, transport)
    seen = 0

    def on_user_registered(message: UserRegistered, meta: Delivery) -> None:
        nonlocal seen
        seen += 1

    dispatcher = Dispatcher(
        "ticket_service",
        [Route("user.registered", "event", UserRegistered, on_user_registered)],
        service_map=service_map,
    )
    consumer = Consumer(
        transport, "user_events", dispatcher, consumer_name="bench", batch_size=batch
    )
    await consumer.subscription()
    message = event()
    publish = bus.publish_event
    start = time.process_time()
    # Publish and consume in rounds, as a live system does: the consumer keeps up.
    for round_ in range(n // batch):
        for _ in range(batch):
            await publish("user.registered", message)
        await consumer.run(limit=batch, until_empty=True)
        if at_rounds and round_ in at_rounds:
            at_rounds[round_]()
    elapsed = time.process_time() - start
    assert seen == n // batch * batch, seen
    return seen / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--flat", type=int, default=1_000_000, help="messages for the RSS check")
    args = parser.parse_args()
    gc.collect()
    bare = ours = 0.0
    for _ in range(args.repeat):  # alternating, so both see the same machine
        bare = max(bare, bare_loop(args.messages))
        ours = max(ours, asyncio.run(toolkit_loop(args.messages, args.batch)))
    print(f"in-memory, small event, {args.messages:,} messages, best of {args.repeat}")
    print(f"  bare msgspec decode + call : {bare:>12,.0f} msg/s")
    print(f"  toolkit publish->dispatch->handler: {ours:>12,.0f} msg/s")
    print(f"  ratio toolkit / bare       : {ours / bare:>12.3f}x   (aim >= 0.25x)")
    print(f"  aim >= 300,000 msg/s       : {'met' if ours >= 300_000 else 'NOT met'}")
    rss: list[int] = []
    rounds = args.flat // args.batch
    marks = {
        rounds // 10 - 1: lambda: rss.append(rss_bytes()),
        rounds - 1: lambda: rss.append(rss_bytes()),
    }
    asyncio.run(toolkit_loop(args.flat, args.batch, marks))
    growth = (rss[1] - rss[0]) / 2**20
    flat = growth <= 2.0
    print(
        f"  resident memory over {args.flat:,} messages: {rss[0] / 2**20:.1f} MiB after "
        f"{args.flat // 10:,}, {rss[1] / 2**20:.1f} MiB at the end: {growth:+.1f} MiB   "
        f"(aim: flat, within 2 MiB: {'met' if flat else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
