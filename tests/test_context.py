"""Context propagation: what a handler sends continues the conversation of the message it
handles, without ``caused_by``; the metadata keys its service propagates go along."""

from __future__ import annotations

import asyncio

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
    ServiceSpec,
    SyncDistributedBus,
)
from toolkit.context import current_delivery, handling, with_delivery
from toolkit.testing import InMemorySystem

#: web -> order.place -> orders -> order.placed -> shipping -> shipment.created -> audit
SHOP = ServiceMap(
    channels=[
        ChannelSpec("audit_in", "queue", ("audit",)),
        ChannelSpec("orders_in", "queue", ("orders",)),
        ChannelSpec("shipping_in", "queue", ("shipping",)),
    ],
    command_routes={"orders": "orders_in"},
    event_routes=[
        EventRoute("audit_in", "audit", ("shipment.created",)),
        EventRoute("shipping_in", "shipping", ("order.placed",)),
    ],
    commands={"order.place": "orders"},
    events={"order.placed": "orders", "shipment.created": "shipping"},
    services=[
        ServiceSpec("orders", propagate=("tenant", "locale")),
        ServiceSpec("shipping", propagate=("tenant",)),
        ServiceSpec("web"),
    ],
)


class Order(msgspec.Struct, frozen=True):
    order_id: int


#: tasks handlers started, which outlive them
STARTED: list[asyncio.Task[object]] = []


async def shop(system: InMemorySystem) -> list[Delivery]:
    """Bind orders, shipping and audit; returns what audit receives."""
    orders, shipping = system.bus("orders"), system.sync_bus("shipping")
    audited: list[Delivery] = []

    def place(message: Order, meta: Delivery) -> None:
        # A sync handler starting a task that publishes after it returned, with an
        # explicit locale and no caused_by: the task copied the handler's context.
        task = asyncio.get_running_loop().create_task(
            orders.publish_event("order.placed", message, {"locale": "fr"})
        )
        STARTED.append(task)  # type: ignore[arg-type]

    async def placed(message: Order, meta: Delivery) -> None:
        await asyncio.sleep(0)
        shipping.publish_event("shipment.created", message)  # the sync bus

    await system.bind(Dispatcher("orders", [Route("order.place", "command", Order, place)]))
    await system.bind(Dispatcher("shipping", [Route("order.placed", "event", Order, placed)]))
    await system.bind(
        Dispatcher(
            "audit",
            [Route("shipment.created", "event", Order, lambda m, d: audited.append(d))],
        )
    )
    return audited


async def test_a_handler_continues_the_conversation_and_carries_declared_metadata() -> None:
    system = InMemorySystem(SHOP)
    audited = await shop(system)
    command_id = await system.bus("web").send_command(
        "orders", "order.place", Order(7), {"tenant": "acme", "locale": "en", "session": "s1"}
    )
    await system.run_all()
    await asyncio.gather(*STARTED)
    await system.run_all()
    [placed] = system.messages("shipping_in")
    assert placed.headers.causation_id == command_id
    assert placed.headers.correlation_id == command_id
    # tenant carried on; locale given explicitly wins; session is not propagated.
    assert placed.headers.metadata == {"tenant": "acme", "locale": "fr"}
    [shipment] = audited
    assert shipment.headers.causation_id == placed.headers.message_id
    assert shipment.headers.correlation_id == command_id
    assert shipment.metadata == {"tenant": "acme"}  # shipping propagates tenant only
    # Outside handlers nothing is current: a new conversation.
    assert current_delivery() is None
    later = await system.bus("web").send_command("orders", "order.place", Order(8))
    envelope = system.messages("orders_in")[-1]
    assert (envelope.headers.causation_id, envelope.headers.correlation_id) == ("", later)


async def test_explicit_caused_by_and_metadata_win_over_the_current_delivery() -> None:
    system = InMemorySystem(SHOP)
    web, orders = system.bus("web"), system.bus("orders")
    first_id = await web.send_command("orders", "order.place", Order(1), {"tenant": "t1"})
    await web.send_command("orders", "order.place", Order(2), {"tenant": "t2"})
    handled: list[Delivery] = []

    async def place(message: Order, meta: Delivery) -> None:
        handled.append(meta)
        if message.order_id == 2:
            await orders.publish_event(
                "order.placed", message, {"tenant": "mine"}, caused_by=handled[0]
            )

    await system.bind(Dispatcher("orders", [Route("order.place", "command", Order, place)]))
    await system.run("orders")
    [placed] = system.messages("shipping_in")
    assert placed.headers.causation_id == first_id
    assert placed.headers.metadata == {"tenant": "mine"}


async def test_handlers_running_at_once_each_see_their_own_delivery() -> None:
    transport = InMemoryTransport()
    orders = DistributedBus("orders", SHOP, transport)
    sent = [
        await DistributedBus("web", SHOP, transport).send_command(
            "orders", "order.place", Order(i), {"tenant": f"t{i}"}
        )
        for i in range(8)
    ]

    async def place(message: Order, meta: Delivery) -> None:
        await asyncio.sleep(0.001 * (8 - message.order_id))  # finish in reverse order
        assert current_delivery() is meta
        await orders.publish_event("order.placed", message)

    dispatcher = Dispatcher("orders", [Route("order.place", "command", Order, place)])
    consumer = Consumer(transport, "orders_in", dispatcher, concurrency=8, batch_size=8)
    await consumer.subscription()
    await consumer.run(until_empty=True)
    assert consumer.stats.handled == 8
    caused = {
        e.headers.causation_id: e.headers.metadata["tenant"]
        for e in transport.messages("shipping_in")
    }
    assert caused == {message_id: f"t{i}" for i, message_id in enumerate(sent)}


async def test_the_delivery_goes_to_a_worker_thread_with_the_context() -> None:
    transport = InMemoryTransport()
    shipping = SyncDistributedBus("shipping", SHOP, transport)
    await DistributedBus("web", SHOP, transport).send_command("orders", "order.place", Order(1))
    [envelope] = transport.messages("orders_in")
    delivery = Delivery(envelope, "orders_in", 0)

    def blocking_work() -> str:
        return shipping.publish_event("shipment.created", Order(1)).message_id

    loop = asyncio.get_running_loop()
    with handling(delivery):
        assert current_delivery() is delivery
        in_thread = await loop.run_in_executor(None, with_delivery(delivery, blocking_work))
        by_to_thread = await asyncio.to_thread(blocking_work)
    assert current_delivery() is None
    stored = {e.headers.message_id: e for e in transport.messages("audit_in")}
    for message_id in (in_thread, by_to_thread):
        assert stored[message_id].headers.causation_id == envelope.headers.message_id
