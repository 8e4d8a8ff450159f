"""toolkit: smart endpoints, dumb pipes.

Schema files describe services, their messages and the service map;
``toolkit generate`` turns them into typed code; this package is the small
runtime that carries envelopes over channels and dispatches them to the
generated handlers.
"""

from toolkit.bus import DistributedBus, PublishResult, SyncDistributedBus
from toolkit.channels.base import (
    DeadLetter,
    DeadLetterStore,
    Delivery,
    Subscription,
    SyncTransport,
    Transport,
)
from toolkit.channels.memory import InMemoryTransport
from toolkit.consumer import Consumer, ConsumerStats
from toolkit.dispatcher import Dispatcher, HandlerResult, Outcome, Rejected, Route
from toolkit.envelope import COMMAND, EVENT, Envelope, Headers, WireError, new_message_id
from toolkit.service_map import ChannelSpec, EventRoute, ServiceMap, UnknownServiceError

__all__ = [
    "COMMAND",
    "EVENT",
    "ChannelSpec",
    "Consumer",
    "ConsumerStats",
    "DeadLetter",
    "DeadLetterStore",
    "Delivery",
    "Dispatcher",
    "DistributedBus",
    "Envelope",
    "EventRoute",
    "HandlerResult",
    "Headers",
    "InMemoryTransport",
    "Outcome",
    "PublishResult",
    "Rejected",
    "Route",
    "ServiceMap",
    "Subscription",
    "SyncDistributedBus",
    "SyncTransport",
    "Transport",
    "UnknownServiceError",
    "WireError",
    "new_message_id",
]
