"""One trace across services: a command handled in A causes events handled in B and C.

The same flow over the in-memory transport and over a real Redis (private
server): every span in one trace, each handling span the child of the
publish span that made its message, each publish inside a handler the child
of that handler's span.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from opentelemetry.trace import SpanKind

from tests.telemetry.conftest import Otel
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
    ServiceSpec,
)
from toolkit.channels.base import Transport

#: web -> order.place -> orders -> order.placed -> shipping and billing
SHOP = ServiceMap(
    channels=[
        ChannelSpec("orders_in", "queue", ("orders",)),
        ChannelSpec("order_events", "stream", ("billing", "shipping")),
    ],
    command_routes={"orders": "orders_in"},
    event_routes=[
        EventRoute("order_events", "billing", ("order.placed",)),
        EventRoute("order_events", "shipping", ("order.placed",)),
    ],
    commands={"order.place": "orders"},
    events={"order.placed": "orders"},
    services=[
        ServiceSpec("orders"),
        ServiceSpec("shipping"),
        ServiceSpec("billing"),
        ServiceSpec("web"),
    ],
)


class Order(msgspec.Struct, frozen=True):
    order_id: int


async def shop(transport: Transport, **options: Any) -> tuple[str, list[Delivery]]:
    """Send one command from web and run orders, shipping and billing until empty."""
    orders_bus = DistributedBus("orders", SHOP, transport)
    handled: list[Delivery] = []

    async def place(message: Order, meta: Delivery) -> None:
        handled.append(meta)
        await orders_bus.publish_event("order.placed", message)

    def placed(message: Order, meta: Delivery) -> None:  # synchronous, as many are
        handled.append(meta)

    command_id = await DistributedBus("web", SHOP, transport).send_command(
        "orders", "order.place", Order(1)
    )
    plan: list[tuple[str, str, Route]] = [
        ("orders", "orders_in", Route("order.place", "command", Order, place)),
        ("shipping", "order_events", Route("order.placed", "event", Order, placed)),
        ("billing", "order_events", Route("order.placed", "event", Order, placed)),
    ]
    for service, channel, route in plan:
        consumer = Consumer(
            transport,
            channel,
            Dispatcher(service, [route], service_map=SHOP),
            block_timeout=0.1,
            **options,
        )
        await consumer.run(until_empty=True)
        await consumer.close()
    return command_id, handled


def check_one_trace(otel: Otel, command_id: str, handled: list[Delivery]) -> None:
    spans = otel.spans.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == [
        "process order.place",
        "process order.placed",
        "publish order.place",
        "publish order.placed",
    ]
    [send] = by_name["publish order.place"]
    [process_command] = by_name["process order.place"]
    [publish] = by_name["publish order.placed"]
    shipped, billed = sorted(
        by_name["process order.placed"], key=lambda s: s.attributes["toolkit.group"]
    )[::-1]
    assert {s.context.trace_id for s in spans} == {send.context.trace_id}
    assert send.parent is None
    assert send.kind is SpanKind.PRODUCER and process_command.kind is SpanKind.CONSUMER
    assert process_command.parent.span_id == send.context.span_id
    assert publish.parent.span_id == process_command.context.span_id
    assert shipped.parent.span_id == publish.context.span_id
    assert billed.parent.span_id == publish.context.span_id
    assert (shipped.attributes["toolkit.group"], billed.attributes["toolkit.group"]) == (
        "shipping",
        "billing",
    )
    assert dict(send.attributes) == {
        "messaging.system": "toolkit",
        "messaging.destination.name": "orders_in",
        "messaging.operation": "publish",
        "messaging.message.id": command_id,
        "messaging.message.conversation_id": command_id,
        "toolkit.routing_key": "order.place",
        "toolkit.kind": "command",
        "toolkit.source_service": "web",
        "toolkit.target_service": "orders",
        "toolkit.channel": ("orders_in",),
    }
    assert dict(process_command.attributes) == {
        "messaging.system": "toolkit",
        "messaging.destination.name": "orders_in",
        "messaging.operation": "process",
        "messaging.message.id": command_id,
        "messaging.message.conversation_id": command_id,
        "toolkit.routing_key": "order.place",
        "toolkit.kind": "command",
        "toolkit.source_service": "web",
        "toolkit.target_service": "orders",
        "toolkit.channel": "orders_in",
        "toolkit.group": "orders",
        "toolkit.delivery_count": 1,
    }
    event = handled[1].envelope.headers
    assert publish.attributes["messaging.message.id"] == event.message_id
    assert publish.attributes["messaging.message.conversation_id"] == command_id
    assert publish.attributes["toolkit.channel"] == ("order_events",)
    # The envelope carries the publish span's context as a W3C traceparent.
    assert event.traceparent.startswith(
        f"00-{publish.context.trace_id:032x}-{publish.context.span_id:016x}-"
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"concurrency": 2, "sync_handlers": "thread"}],
    ids=["inline", "worker-threads"],
)
async def test_one_trace_across_three_services_in_memory(
    otel: Otel, options: dict[str, Any]
) -> None:
    command_id, handled = await shop(InMemoryTransport(), **options)
    check_one_trace(otel, command_id, handled)


async def test_one_trace_across_three_services_over_redis(
    otel: Otel, make_transport: Callable[..., Any]
) -> None:
    transport = make_transport()
    command_id, handled = await shop(transport)
    check_one_trace(otel, command_id, handled)
    # On Redis the trace context is a field of the stream entry, as documented.
    entries = await transport.redis.xrange(transport.keys("order_events").stream)
    [(_, flat)] = entries
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    assert fields[b"traceparent"] == handled[1].envelope.headers.traceparent.encode()


async def test_a_producer_in_another_language_joins_the_trace(otel: Otel) -> None:
    transport = InMemoryTransport()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    transport.add_raw(
        "orders_in",
        {
            "message_id": "php-1",
            "routing_key": "order.place",
            "kind": "command",
            "source_service": "php_shop",
            "target_service": "orders",
            "traceparent": f"00-{trace_id}-{parent_id}-01",
            "body": b'{"order_id":2}',
        },
    )
    consumer = Consumer(
        transport,
        "orders_in",
        Dispatcher(
            "orders", [Route("order.place", "command", Order, lambda m, d: None)], service_map=SHOP
        ),
    )
    await consumer.run(until_empty=True)
    [span] = otel.spans.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == trace_id
    assert f"{span.parent.span_id:016x}" == parent_id
    assert span.parent.is_remote


@pytest.mark.parametrize("traceparent", ["garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
async def test_a_malformed_traceparent_starts_a_new_trace(otel: Otel, traceparent: str) -> None:
    transport = InMemoryTransport()
    transport.add_raw(
        "orders_in",
        {
            "message_id": "x-1",
            "routing_key": "order.place",
            "kind": "command",
            "source_service": "x",
            "target_service": "orders",
            "traceparent": traceparent,
            "body": b'{"order_id":3}',
        },
    )
    seen: list[Delivery] = []
    consumer = Consumer(
        transport,
        "orders_in",
        Dispatcher(
            "orders",
            [Route("order.place", "command", Order, lambda m, d: seen.append(d))],
            service_map=SHOP,
        ),
    )
    stats = await consumer.run(until_empty=True)
    assert stats.handled == 1 and len(seen) == 1
    [span] = otel.spans.get_finished_spans()
    assert span.parent is None


async def test_off_the_envelope_carries_no_trace_context() -> None:
    transport = InMemoryTransport()
    await DistributedBus("web", SHOP, transport).send_command("orders", "order.place", Order(1))
    [envelope] = transport.messages("orders_in")
    assert envelope.headers.traceparent == ""
    assert "traceparent" not in envelope.to_fields()


async def test_one_trace_across_three_services_over_postgresql(
    otel: Otel, postgres_url: str, schema: str
) -> None:
    from toolkit.pipe_settings import PipeSettings
    from toolkit.pipes import open_transport

    transport = open_transport(postgres_url, PipeSettings(prefix=schema))
    try:
        command_id, handled = await shop(transport)
        check_one_trace(otel, command_id, handled)
    finally:
        await transport.close()
