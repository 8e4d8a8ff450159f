"""Three services of one shop, as applications (`toolkit run SERVICE --app shop:SERVICE`).

Copied next to the code generated from ``schemas/`` by tests/redis/test_host.py.
Handlers publish without ``caused_by``: what they handle is the host's to carry
on. Each handled message is one JSON line in the file named by
``TOOLKIT_TEST_LOG`` (one O_APPEND write: on disk as soon as the handler returns).
"""

from __future__ import annotations

import json
import os
import sys

from generated.order_service import OrderPlaced, OrderServicePublisher, PlaceOrder
from generated.order_service import bind as bind_orders
from generated.shipping_service import ShipmentSent, ShipOrder, ShippingServicePublisher
from generated.shipping_service import bind as bind_shipping

from generated.billing_service import BillOrder, ShipmentToBill
from generated.billing_service import bind as bind_billing
from toolkit import App, Delivery, Dispatcher, HostContext


def record(service: str, meta: Delivery) -> None:
    h = meta.headers
    line = {
        "service": service,
        "key": h.routing_key,
        "id": h.message_id,
        "correlation": h.correlation_id,
        "causation": h.causation_id,
        "metadata": h.metadata,
        "count": meta.delivery_count,
    }
    fd = os.open(os.environ["TOOLKIT_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


class Orders:
    def __init__(self, publisher: OrderServicePublisher) -> None:
        self.publisher = publisher

    async def on_order_place(self, message: PlaceOrder, meta: Delivery) -> None:
        record("order_service", meta)
        await self.publisher.publish_order_placed(
            OrderPlaced(order_id=message.order_id, product=message.product)
        )


class Shipping:
    def __init__(self, publisher: ShippingServicePublisher) -> None:
        self.publisher = publisher

    async def on_order_placed(self, message: ShipOrder, meta: Delivery) -> None:
        record("shipping_service", meta)
        await self.publisher.publish_shipment_sent(ShipmentSent(order_id=message.order_id))


class Billing:
    def on_order_placed(self, message: BillOrder, meta: Delivery) -> None:
        record("billing_service", meta)

    def on_shipment_sent(self, message: ShipmentToBill, meta: Delivery) -> None:
        record("billing_service", meta)


def orders(ctx: HostContext[OrderServicePublisher]) -> Dispatcher:
    return bind_orders(Orders(ctx.publisher))


def shipping(ctx: HostContext[ShippingServicePublisher]) -> Dispatcher:
    return bind_shipping(Shipping(ctx.publisher))


def billing(ctx: HostContext[None]) -> Dispatcher:
    return bind_billing(Billing())


order_service = App("order_service", OrderServicePublisher, orders)
shipping_service = App("shipping_service", ShippingServicePublisher, shipping)
billing_service = App("billing_service", None, billing)


async def send_order(url: str, prefix: str, order_id: str, tenant: str) -> str:
    """What the shop's front end does: send ``order.place``; prints its message id."""
    import uuid

    from toolkit.pipe_settings import PipeSettings
    from toolkit.pipes import Pipes

    # The default pipe's URL; channels bound elsewhere ([tool.toolkit.pipes],
    # TOOLKIT_CHANNEL_*) travel on their own pipe, as in the services.
    transport = Pipes.from_config(url=url, settings=PipeSettings(prefix=prefix))
    try:
        publisher = ShippingServicePublisher(transport)
        return await publisher.send_order_place(
            PlaceOrder(order_id=uuid.UUID(order_id), product="teapot"),
            metadata={"tenant": tenant},
        )
    finally:
        await transport.close()


if __name__ == "__main__":
    import asyncio

    print(asyncio.run(send_order(*sys.argv[1:5])))
