"""Two services exchanging a command and an event: run in memory, or on Redis with `toolkit run`."""

import asyncio
import uuid

from generated.order_service import OrderPlaced, OrderServicePublisher, PlaceOrder
from generated.order_service import bind as bind_orders
from generated.shipping_service import ShipOrder, ShippingServicePublisher
from generated.shipping_service import bind as bind_shipping

from generated.service_map import SERVICE_MAP
from toolkit import App, Delivery, Dispatcher, HostContext
from toolkit.testing import InMemorySystem


class Orders:
    """Implements the generated OrderServiceHandlers Protocol."""

    def __init__(self, publisher: OrderServicePublisher) -> None:
        self.publisher = publisher

    async def on_order_place(self, message: PlaceOrder, meta: Delivery) -> None:
        print(f"order_service: placing {message.quantity} x {message.product}", flush=True)
        placed = OrderPlaced(
            order_id=message.order_id, product=message.product, quantity=message.quantity
        )
        # Caused by the command being handled: the host carries the conversation on.
        await self.publisher.publish_order_placed(placed)


class Shipping:
    """Implements the generated ShippingServiceHandlers Protocol."""

    def on_order_placed(self, message: ShipOrder, meta: Delivery) -> None:
        print(f"shipping_service: shipping {message.item} for order {message.order_id}", flush=True)


def order_handlers(ctx: HostContext[OrderServicePublisher]) -> Dispatcher:
    # The host gives the publisher: it sends through the host's own connection.
    return bind_orders(Orders(ctx.publisher))


def shipping_handlers(ctx: HostContext[ShippingServicePublisher]) -> Dispatcher:
    return bind_shipping(Shipping())


# The applications: `toolkit run order_service --app app:orders` serves one on Redis.
orders = App("order_service", OrderServicePublisher, order_handlers)
shipping = App("shipping_service", ShippingServicePublisher, shipping_handlers)


async def main() -> None:
    system = InMemorySystem(SERVICE_MAP)
    await system.start(orders)
    shipper = await system.start(shipping)  # its context: shipper.publisher sends as shipping
    await shipper.publisher.send_order_place(PlaceOrder(order_id=uuid.uuid4(), product="teapot"))
    await system.run_all()
    await system.close()


if __name__ == "__main__":
    asyncio.run(main())
