"""Send one command into the running system (`toolkit run`, on the configured pipes)."""

import sys
import uuid

from generated.order_service import PlaceOrder
from generated.shipping_service import ShippingServiceSyncPublisher

from toolkit import SyncPipes

product = sys.argv[1] if len(sys.argv) > 1 else "kettle"
# Each channel on its pipe: [tool.toolkit.pipes], TOOLKIT_PIPE_*, REDIS_URL, else localhost
shipping = ShippingServiceSyncPublisher(SyncPipes.from_config())
shipping.send_order_place(PlaceOrder(order_id=uuid.uuid4(), product=product))
