"""Metrics read back from the SDK's in-memory reader after a run with failures,
retries and dead letters: each count exact."""

from __future__ import annotations

import msgspec

from tests.telemetry.conftest import Otel
from tests.telemetry.test_tracing import SHOP, Order
from toolkit import Consumer, Delivery, Dispatcher, DistributedBus, InMemoryTransport, Route
from toolkit.retry import RetryPolicy

ORDERS = (("toolkit.channel", "orders_in"), ("toolkit.group", "orders"))


async def test_counts_after_failures_retries_and_dead_letters(otel: Otel) -> None:
    transport = InMemoryTransport()
    web = DistributedBus("web", SHOP, transport)
    for order_id in range(5):
        await web.send_command("orders", "order.place", Order(order_id))
    await web.send_command("orders", "order.place", Order(13))  # fails on every attempt
    await web.send_command("orders", "order.place", Order(7))  # fails once, then passes
    # Not an Order: dead-lettered at once, without calling the handler.
    await web.send_command_raw("orders", "order.place", b'{"order_id":"seven"}')
    # Addressed to another service: dead-lettered at once.
    transport.add_raw(
        "orders_in",
        {
            "message_id": "m-1",
            "routing_key": "order.place",
            "kind": "command",
            "source_service": "web",
            "target_service": "shipping",
            "body": b'{"order_id":1}',
        },
    )
    calls: list[int] = []

    def place(message: Order, meta: Delivery) -> None:
        calls.append(message.order_id)
        if message.order_id == 13 or (message.order_id == 7 and meta.delivery_count == 1):
            raise RuntimeError("no stock")

    consumer = Consumer(
        transport,
        "orders_in",
        Dispatcher("orders", [Route("order.place", "command", Order, place)], service_map=SHOP),
        retry=RetryPolicy(attempts=3, base=0.001, cap=0.001, jitter=0),
        block_timeout=0.05,
    )
    stats = await consumer.run(until_empty=True)
    assert (stats.handled, stats.retried, stats.failed, stats.rejected) == (6, 3, 1, 2)

    assert otel.points("toolkit.messages.handled") == {ORDERS: 6}
    assert otel.points("toolkit.messages.skipped") == {ORDERS: 0}
    # every handler call that raised: 13 three times, 7 once
    assert otel.points("toolkit.messages.failed") == {ORDERS: 4}
    assert otel.points("toolkit.messages.retried") == {ORDERS: 3}
    # 13 after its last attempt, the undecodable one, the one for another service
    assert otel.points("toolkit.messages.dead_lettered") == {ORDERS: 3}
    published = (
        ("toolkit.kind", "command"),
        ("toolkit.routing_key", "order.place"),
        ("toolkit.source_service", "web"),
    )
    assert otel.points("toolkit.messages.published") == {published: 8}
    durations = otel.points("toolkit.handler.duration")
    timed = (("toolkit.channel", "orders_in"), ("toolkit.group", "orders"))
    ok = durations[
        (*timed[:1], *timed[1:], ("toolkit.outcome", "ok"), ("toolkit.routing_key", "order.place"))
    ]
    error = durations[
        (*timed, ("toolkit.outcome", "error"), ("toolkit.routing_key", "order.place"))
    ]
    assert (ok.count, error.count) == (6, 4)  # type: ignore[attr-defined]
    assert len(calls) == 10
    # The process spans say which calls failed.
    spans = [s for s in otel.spans.get_finished_spans() if s.name == "process order.place"]
    assert len(spans) == 10
    assert sum(not s.status.is_ok for s in spans) == 4


async def test_skipped_events_and_a_second_consumer_add_up(otel: Otel) -> None:
    transport = InMemoryTransport()
    orders = DistributedBus("orders", SHOP, transport)
    for order_id in range(3):
        await orders.publish_event("order.placed", Order(order_id))

    async def run(route: Route) -> None:
        consumer = Consumer(
            transport,
            "order_events",
            Dispatcher("shipping", [route], service_map=SHOP),
            block_timeout=0.05,
        )
        await consumer.run(until_empty=True, limit=2)
        await consumer.close()

    # shipping handles order.placed; a second consumer of its group takes the rest
    await run(Route("order.placed", "event", Order, lambda m, d: None))
    await run(Route("order.placed", "event", Order, lambda m, d: None))
    group = (("toolkit.channel", "order_events"), ("toolkit.group", "shipping"))
    assert otel.points("toolkit.messages.handled")[group] == 3


async def test_lag_and_pending_gauges_from_the_channel_status(otel: Otel) -> None:
    transport = InMemoryTransport()
    web = DistributedBus("web", SHOP, transport)
    for order_id in range(5):
        await web.send_command("orders", "order.place", Order(order_id))
    consumer = Consumer(
        transport,
        "orders_in",
        Dispatcher(
            "orders", [Route("order.place", "command", Order, lambda m, d: None)], service_map=SHOP
        ),
        batch_size=2,
    )
    sub = await consumer.subscription()
    [first, _second] = await sub.receive(2, 0)
    await sub.ack([first])
    await otel.telemetry.read_status(transport, "orders_in")
    assert otel.points("toolkit.consumer.lag") == {ORDERS: 3}
    assert otel.points("toolkit.consumer.pending") == {ORDERS: 1}
    assert otel.points("toolkit.consumer.retrying") == {ORDERS: 0}
    await consumer.close()


def test_metric_names_are_the_documented_ones() -> None:
    from pathlib import Path

    from toolkit.telemetry.otel import _COUNTS, _GAUGES

    doc = (Path(__file__).parents[2] / "docs" / "observability.md").read_text()
    names = [n for n, _, _ in _COUNTS] + [n for n, _, _ in _GAUGES]
    names += ["toolkit.messages.published", "toolkit.handler.duration"]
    for name in names:
        assert f"`{name}`" in doc, name
    assert msgspec  # the structs above are msgspec's
