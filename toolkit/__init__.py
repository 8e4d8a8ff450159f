"""toolkit: smart endpoints, dumb pipes.

Schema files describe services, their messages and the service map;
``toolkit generate`` turns them into typed code; this package is the small
runtime that carries envelopes over channels and dispatches them to the
generated handlers.

Every public name is imported on first use (PEP 562), so ``import toolkit``
costs nothing, and the generator can use the leaf vocabulary
(:mod:`toolkit.routing`, :mod:`toolkit.wire`) without loading the bus, the
consumer, the runner or any transport.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from toolkit.channels.redis_streams import ChannelOptions, RedisTransport, SyncRedisTransport
    from toolkit.consumer import Consumer, ConsumerStats
    from toolkit.dispatcher import Dispatcher, HandlerResult, Outcome, Rejected, Route
    from toolkit.envelope import Envelope, Headers, WireError, new_message_id
    from toolkit.retry import RetryPolicy
    from toolkit.routing import ChannelSpec, EventRoute
    from toolkit.runner import Runner, RunOptions
    from toolkit.service_map import ServiceMap, UnknownServiceError
    from toolkit.wire import COMMAND, EVENT

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "DistributedBus": "toolkit.bus",
    "PublishResult": "toolkit.bus",
    "SyncDistributedBus": "toolkit.bus",
    "DeadLetter": "toolkit.channels.base",
    "DeadLetterStore": "toolkit.channels.base",
    "DelayedRetry": "toolkit.channels.base",
    "Delivery": "toolkit.channels.base",
    "Subscription": "toolkit.channels.base",
    "SyncTransport": "toolkit.channels.base",
    "Transport": "toolkit.channels.base",
    "TransportError": "toolkit.channels.base",
    "InMemoryTransport": "toolkit.channels.memory",
    "ChannelOptions": "toolkit.channels.redis_streams",
    "RedisTransport": "toolkit.channels.redis_streams",
    "SyncRedisTransport": "toolkit.channels.redis_streams",
    "Consumer": "toolkit.consumer",
    "ConsumerStats": "toolkit.consumer",
    "Dispatcher": "toolkit.dispatcher",
    "HandlerResult": "toolkit.dispatcher",
    "Outcome": "toolkit.dispatcher",
    "Rejected": "toolkit.dispatcher",
    "Route": "toolkit.dispatcher",
    "Envelope": "toolkit.envelope",
    "Headers": "toolkit.envelope",
    "WireError": "toolkit.envelope",
    "new_message_id": "toolkit.envelope",
    "RetryPolicy": "toolkit.retry",
    "ChannelSpec": "toolkit.routing",
    "EventRoute": "toolkit.routing",
    "RunOptions": "toolkit.runner",
    "Runner": "toolkit.runner",
    "ServiceMap": "toolkit.service_map",
    "UnknownServiceError": "toolkit.service_map",
    "COMMAND": "toolkit.wire",
    "EVENT": "toolkit.wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
