"""Per-channel subscriptions on the consuming side: ``Dispatcher.on_channel`` and the
publisher filter. Behaviour over each transport is in the channel conformance suite
(``tests/channels/suite/subscriptions.py``)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import generated.ticket_service as ticket_service
from generated.service_map import SERVICE_MAP
from tests.channels.suite.helpers import envelope
from tests.channels.suite.subscriptions import ORDERS, Order
from toolkit import Consumer, Delivery, Dispatcher, EventRoute, InMemoryTransport, Route
from toolkit.routing import publisher_filter
from toolkit.testing import InMemorySystem


async def test_in_memory_system_applies_its_map_to_a_dispatcher_built_without_one() -> None:
    system = InMemorySystem(ORDERS)
    handled: list[tuple[str, str]] = []

    def record(message: Order, meta: Delivery) -> None:
        handled.append((meta.channel, meta.routing_key))

    await system.bind(
        Dispatcher(
            "ledger",
            [Route(k, "event", Order, record) for k in ("order.placed", "order.refunded")],
        )
    )
    bus = system.bus("shop")
    await bus.publish_event("order.placed", Order(1))
    await bus.publish_event("order.refunded", Order(1))
    stats = await system.run_all()
    assert sorted(handled) == [("audit", "order.refunded"), ("ledger_in", "order.placed")]
    assert (stats.handled, stats.skipped) == (2, 1)


def test_on_channel_keeps_commands_and_the_keys_subscribed_there() -> None:
    dispatcher = ticket_service.bind(_Handlers())
    assert dispatcher.service_map is SERVICE_MAP
    commands = dispatcher.on_channel("ticket_commands")
    events = dispatcher.on_channel("user_events")
    assert sorted(commands.routes) == ["ticket.create"]
    assert sorted(events.routes) == ["ticket.create", "user.billing.changed", "user.registered"]
    assert events.on_channel("user_events") is events
    # user_events: include_publishers = ["user_service"]
    accepts = events.routes["user.registered"].publishers
    assert accepts is not None and accepts("user_service") and not accepts("billing_service")


def test_on_channel_refuses_a_channel_the_service_does_not_consume() -> None:
    dispatcher = ticket_service.bind(_Handlers())
    with pytest.raises(ValueError) as caught:
        dispatcher.on_channel("billing_events")
    assert str(caught.value) == (
        "the service map says 'ticket_service' does not consume 'billing_events' "
        "(it consumes: ticket_commands, user_events)"
    )
    with pytest.raises(ValueError, match="is for channel 'user_events', not 'ticket_commands'"):
        dispatcher.on_channel("user_events").on_channel("ticket_commands")
    with pytest.raises(ValueError, match="does not consume 'billing_events'"):
        Consumer(InMemoryTransport(), "billing_events", dispatcher)


async def test_without_a_service_map_every_routed_event_is_handled_on_any_channel() -> None:
    seen: list[str] = []
    dispatcher = Dispatcher("x", [Route("a.b", "event", Order, lambda m, d: seen.append("a.b"))])
    assert dispatcher.on_channel("anything") is dispatcher
    transport = InMemoryTransport()
    consumer = Consumer(transport, "anything", dispatcher)
    await consumer.subscription()
    body = msgspec.json.encode(Order(1))
    await transport.send("anything", [envelope("a.b", body, source_service="whoever")])
    await consumer.run(until_empty=True)
    assert seen == ["a.b"]


services = st.sampled_from(["a", "b", "c", "d"])
filters = st.one_of(
    st.just((None, None)),
    st.tuples(st.lists(services, max_size=3).map(tuple), st.none()),
    st.tuples(st.none(), st.lists(services, max_size=3).map(tuple)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(filters, min_size=1, max_size=4), services)
def test_the_publisher_filter_agrees_with_the_routes(
    lists: list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]], publisher: str
) -> None:
    routes = [EventRoute("c", "s", ("k",), inc, exc) for inc, exc in lists]
    accepts = publisher_filter(routes)
    expected = any(r.accepts_publisher(publisher) for r in routes)
    assert (accepts is None or accepts(publisher)) == expected
    assert (accepts is None) == any(inc is None and exc is None for inc, exc in lists)


class _Handlers:
    def on_ticket_create(self, message: object, meta: Delivery) -> None: ...

    def on_user_registered(self, message: object, meta: Delivery) -> None: ...

    def on_user_billing_changed(self, message: object, meta: Delivery) -> None: ...
