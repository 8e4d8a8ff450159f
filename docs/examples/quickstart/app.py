"""Two services exchanging a command and an event, in memory."""

import asyncio
import uuid

from generated.order_service import OrderPlaced, OrderServicePublisher, PlaceOrder
from generated.order_service import bind as bind_orders
from generated.shipping_service import ShipOrder, ShippingServicePublisher
from generated.shipping_service import bind as bind_shipping

from generated.service_map import SERVICE_MAP
from toolkit import Delivery
from toolkit.testing import InMemorySystem


class Orders:
    """Implements the generated OrderServiceHandlers Protocol."""

    def __init__(self, publisher: OrderServicePublisher) -> None:
        self.publisher = publisher

    async def on_order_place(self, message: PlaceOrder, meta: Delivery) -> None:
        print(f"order_service: placing {message.quantity} x {message.product}")
        placed = OrderPlaced(
            order_id=message.order_id, product=message.product, quantity=message.quantity
        )
        await self.publisher.publish_order_placed(placed, caused_by=meta)


class Shipping:
    """Implements the generated ShippingServiceHandlers Protocol."""

    def on_order_placed(self, message: ShipOrder, meta: Delivery) -> None:
        print(f"shipping_service: shipping {message.item} for order {message.order_id}")


async def main() -> None:
    system = InMemorySystem(SERVICE_MAP)
    # A publisher needs only a transport: it sends as its own service, by SERVICE_MAP.
    await system.bind(bind_orders(Orders(OrderServicePublisher(system.transport))))
    await system.bind(bind_shipping(Shipping()))
    shipping = ShippingServicePublisher(system.transport)
    await shipping.send_order_place(PlaceOrder(order_id=uuid.uuid4(), product="teapot"))
    await system.run_all()


asyncio.run(main())
