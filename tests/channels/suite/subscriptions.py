"""A service's subscriptions on the consuming side: each channel delivers the keys the
service subscribes to there, from the publishers it accepts there; the rest is skipped.

The system: ``ledger`` consumes ``ledger_in`` (``order.placed`` from ``shop`` only)
and the stream ``audit``, which it shares with ``auditor`` and where it subscribes
to ``order.refunded`` only. ``auditor`` takes ``order.*`` on ``audit``, except
what ``ledger`` publishes. So ``order.placed`` reaches both channels: once for
``ledger`` (on ``ledger_in``) and once for ``auditor`` (on ``audit``).
"""

from __future__ import annotations

import msgspec
import pytest

from tests.channels.suite.helpers import envelope
from toolkit import (
    ChannelSpec,
    Consumer,
    Delivery,
    Dispatcher,
    DistributedBus,
    EventRoute,
    Route,
    ServiceMap,
    Transport,
    UnknownServiceError,
)

pytestmark = pytest.mark.asyncio

ORDERS = ServiceMap(
    channels=[
        ChannelSpec("audit", "stream", ("auditor", "ledger")),
        ChannelSpec("ledger_in", "queue", ("ledger",)),
    ],
    command_routes={},
    event_routes=[
        EventRoute("audit", "auditor", ("order.*",), exclude_publishers=("ledger",)),
        EventRoute("audit", "ledger", ("order.refunded",)),
        EventRoute("ledger_in", "ledger", ("order.placed",), include_publishers=("shop",)),
    ],
    events={"order.placed": "shop", "order.refunded": "shop"},
)


class Order(msgspec.Struct, frozen=True):
    order_id: int


class Seen:
    """A dispatcher of one service that records (channel, key, order id) per handled event."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, str, int]] = []

    def dispatcher(self, service: str, *keys: str) -> Dispatcher:
        return Dispatcher(
            service, [Route(k, "event", Order, self._record) for k in keys], service_map=ORDERS
        )

    def _record(self, message: Order, meta: Delivery) -> None:
        self.handled.append((meta.channel, meta.routing_key, message.order_id))


async def consume(transport: Transport, dispatcher: Dispatcher, channel: str) -> Consumer:
    consumer = Consumer(transport, channel, dispatcher, consumer_name="c1", block_timeout=0.1)
    await consumer.subscription()
    return consumer


async def test_an_event_a_shared_stream_carries_for_another_service_is_handled_once(
    transport: Transport,
) -> None:
    ledger = Seen()
    dispatcher = ledger.dispatcher("ledger", "order.placed", "order.refunded")
    on_queue = await consume(transport, dispatcher, "ledger_in")
    on_stream = await consume(transport, dispatcher, "audit")
    bus = DistributedBus("shop", ORDERS, transport)
    placed = await bus.publish_event("order.placed", Order(1))
    await bus.publish_event("order.refunded", Order(1))
    assert placed.channels == ("audit", "ledger_in")  # for auditor and for ledger
    await on_queue.run(until_empty=True)
    await on_stream.run(until_empty=True)
    assert ledger.handled == [
        ("ledger_in", "order.placed", 1),
        ("audit", "order.refunded", 1),
    ]
    assert (on_stream.stats.handled, on_stream.stats.skipped) == (1, 1)
    for consumer in (on_queue, on_stream):
        await consumer.close()


async def test_a_forged_source_service_does_not_pass_the_publisher_filters(
    transport: Transport,
) -> None:
    ledger, auditor = Seen(), Seen()
    ledger_in = await consume(transport, ledger.dispatcher("ledger", "order.placed"), "ledger_in")
    audit = await consume(transport, auditor.dispatcher("auditor", "order.placed"), "audit")
    body = msgspec.json.encode(Order(2))
    # Written to the channels directly, not through a bus: only the headers say who sent them.
    await transport.send(
        "ledger_in",
        [
            envelope("order.placed", body, source_service="mallory"),  # not in include_publishers
            envelope("order.placed", msgspec.json.encode(Order(3)), source_service="shop"),
        ],
    )
    await transport.send(
        "audit",
        [
            envelope("order.placed", body, source_service="ledger"),  # in exclude_publishers
            envelope("order.placed", msgspec.json.encode(Order(4)), source_service="mallory"),
        ],
    )
    await ledger_in.run(until_empty=True)
    await audit.run(until_empty=True)
    assert ledger.handled == [("ledger_in", "order.placed", 3)]
    assert auditor.handled == [("audit", "order.placed", 4)]
    for consumer in (ledger_in, audit):
        stats = consumer.stats
        assert (stats.handled, stats.skipped, stats.rejected) == (1, 1, 0)
        await consumer.close()


async def test_a_bus_for_a_service_the_map_does_not_know_is_refused(transport: Transport) -> None:
    with pytest.raises(UnknownServiceError) as caught:
        DistributedBus("storefront", ORDERS, transport)
    assert str(caught.value) == (
        "no service 'storefront' in the service map: a bus sends as one of its services "
        "(auditor, ledger, shop)"
    )
    assert caught.value.service == "storefront"
