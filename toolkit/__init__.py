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
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from toolkit.app import App, HostContext
    from toolkit.bus import DistributedBus, SyncDistributedBus
    from toolkit.channels.base import (
        DeadLetter,
        DeadLetterStore,
        DelayedRetry,
        Delivery,
        RenewsLeases,
        Subscription,
        SyncTransport,
        Transport,
        TransportError,
    )
    from toolkit.channels.memory import InMemoryTransport
    from toolkit.channels.redis import ChannelOptions, RedisTransport, SyncRedisTransport
    from toolkit.consumer import Consumer, ConsumerStats
    from toolkit.dispatcher import Dispatcher, HandlerResult, Outcome, Rejected, Route
    from toolkit.envelope import Envelope, Headers, WireError, new_message_id
    from toolkit.health import HealthOptions
    from toolkit.host import ServiceHost
    from toolkit.pipe_settings import BindingError, Bindings, PipeSettings
    from toolkit.pipes import Pipes, SyncPipes
    from toolkit.publish_result import PartialPublishError, PublishResult
    from toolkit.retry import RetryPolicy
    from toolkit.routing import ChannelSpec, EventRoute, ServiceSpec
    from toolkit.runner import Runner, RunOptions
    from toolkit.service_map import ServiceMap, UnknownServiceError
    from toolkit.wire import COMMAND, EVENT

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "App": "toolkit.app",
    "HostContext": "toolkit.app",
    "DistributedBus": "toolkit.bus",
    "PartialPublishError": "toolkit.publish_result",
    "PublishResult": "toolkit.publish_result",
    "SyncDistributedBus": "toolkit.bus",
    "DeadLetter": "toolkit.channels.base",
    "DeadLetterStore": "toolkit.channels.base",
    "DelayedRetry": "toolkit.channels.base",
    "Delivery": "toolkit.channels.base",
    "RenewsLeases": "toolkit.channels.base",
    "Subscription": "toolkit.channels.base",
    "SyncTransport": "toolkit.channels.base",
    "Transport": "toolkit.channels.base",
    "TransportError": "toolkit.channels.base",
    "InMemoryTransport": "toolkit.channels.memory",
    "ChannelOptions": "toolkit.channels.redis.options",
    "RedisTransport": "toolkit.channels.redis.transport",
    "SyncRedisTransport": "toolkit.channels.redis.sync",
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
    "HealthOptions": "toolkit.health",
    "ServiceHost": "toolkit.host",
    "BindingError": "toolkit.pipe_settings",
    "Bindings": "toolkit.pipe_settings",
    "PipeSettings": "toolkit.pipe_settings",
    "Pipes": "toolkit.pipes",
    "SyncPipes": "toolkit.pipes",
    "RetryPolicy": "toolkit.retry",
    "ChannelSpec": "toolkit.routing",
    "EventRoute": "toolkit.routing",
    "ServiceSpec": "toolkit.routing",
    "RunOptions": "toolkit.runner",
    "Runner": "toolkit.runner",
    "ServiceMap": "toolkit.service_map",
    "UnknownServiceError": "toolkit.service_map",
    "COMMAND": "toolkit.wire",
    "EVENT": "toolkit.wire",
}


def _lazy(
    module: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for the package ``module``.

    ``names`` maps each public name to the module that defines it; a name is
    imported on first use. Here rather than in a module of its own, so that
    subpackages (:mod:`toolkit.channels.redis`) share it at no import cost.
    """
    namespace = sys.modules[module].__dict__

    def __getattr__(name: str) -> Any:
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__


__getattr__, __dir__ = _lazy(__name__, _LAZY)


__all__ = [
    "COMMAND",
    "EVENT",
    "App",
    "BindingError",
    "Bindings",
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
    "HealthOptions",
    "HostContext",
    "InMemoryTransport",
    "Outcome",
    "PartialPublishError",
    "PipeSettings",
    "Pipes",
    "PublishResult",
    "RedisTransport",
    "Rejected",
    "RenewsLeases",
    "RetryPolicy",
    "Route",
    "RunOptions",
    "Runner",
    "ServiceHost",
    "ServiceMap",
    "ServiceSpec",
    "Subscription",
    "SyncDistributedBus",
    "SyncPipes",
    "SyncRedisTransport",
    "SyncTransport",
    "Transport",
    "TransportError",
    "UnknownServiceError",
    "WireError",
    "new_message_id",
]
