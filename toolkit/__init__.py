"""toolkit: smart endpoints, dumb pipes.

Schema files describe services, their messages and the service map;
``toolkit generate`` turns them into typed code; this package is the small
runtime that carries envelopes over channels and dispatches them to the
generated handlers.
"""

from typing import TYPE_CHECKING, Any

from toolkit.bus import DistributedBus, PublishResult, SyncDistributedBus
from toolkit.channels.base import (
    DeadLetter,
    DeadLetterStore,
    DelayedRetry,
    Delivery,
    Subscription,
    SyncTransport,
    Transport,
    TransportError,
)
from toolkit.channels.memory import InMemoryTransport
from toolkit.consumer import Consumer, ConsumerStats
from toolkit.dispatcher import Dispatcher, HandlerResult, Outcome, Rejected, Route
from toolkit.envelope import COMMAND, EVENT, Envelope, Headers, WireError, new_message_id
from toolkit.retry import RetryPolicy
from toolkit.runner import Runner, RunOptions
from toolkit.service_map import ChannelSpec, EventRoute, ServiceMap, UnknownServiceError

if TYPE_CHECKING:
    from toolkit.channels.redis_streams import ChannelOptions, RedisTransport, SyncRedisTransport

# The Redis transport is imported on first use: programs that only generate
# code or test in memory do not pay for importing redis.asyncio.
_LAZY = {
    "ChannelOptions": "toolkit.channels.redis_streams",
    "RedisTransport": "toolkit.channels.redis_streams",
    "SyncRedisTransport": "toolkit.channels.redis_streams",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "COMMAND",
    "EVENT",
    "ChannelOptions",
    "ChannelSpec",
    "Consumer",
    "ConsumerStats",
    "DeadLetter",
    "DeadLetterStore",
    "DelayedRetry",
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
    "RedisTransport",
    "Rejected",
    "RetryPolicy",
    "Route",
    "RunOptions",
    "Runner",
    "ServiceMap",
    "Subscription",
    "SyncDistributedBus",
    "SyncRedisTransport",
    "SyncTransport",
    "Transport",
    "TransportError",
    "UnknownServiceError",
    "WireError",
    "new_message_id",
]
