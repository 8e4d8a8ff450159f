"""Send one command into the running system (`toolkit run` on Redis)."""

import sys
import uuid

from generated.order_service import PlaceOrder
from generated.shipping_service import ShippingServiceSyncPublisher

from toolkit import SyncRedisTransport

product = sys.argv[1] if len(sys.argv) > 1 else "kettle"
shipping = ShippingServiceSyncPublisher(SyncRedisTransport())  # REDIS_URL, else localhost
shipping.send_order_place(PlaceOrder(order_id=uuid.uuid4(), product=product))
