"""Redis Streams channels: the production transport.

A channel is one stream (key layout in :mod:`toolkit.channels.redis.keys`);
each consuming service is a consumer group on it, created at the start of the
stream (``XGROUP CREATE ... 0 MKSTREAM``) so nothing sent before its first
consumer started is missed. Entries are the flat envelope of
``docs/wire-format.md``, readable in ``redis-cli``.

One job per module:

==================  ===========================================================
``transport``       :class:`RedisTransport`: sending (coalesced), groups, trimming
``subscription``    :class:`RedisSubscription`: receive, reclaim, ack, retry, reject
``dead_letters``    the dead-letter store: list, replay, purge
``groups``          a channel's groups: list, remove; forgetting idle consumers
``sync``            :class:`SyncRedisTransport`: sending without asyncio
``shards``          sharded channels: N streams, order per partition key
``options``         :class:`ChannelOptions` and the XADD arguments they imply
``keys``            :class:`ChannelKeys`: the Redis keys of a channel
``connection``      clients from a URL (one server or a cluster), held connections
``entries``         stream entries read back as envelopes and dead letters
``resp``            entries packed as command arguments (RESP by hand)
``raw``             commands whose replies are parsed here, not by redis-py
``scripts``         the Lua scripts
``errors``          what an error means: transient, group gone, or real
==================  ===========================================================

Names are imported on first use, so ``toolkit.channels.redis.keys`` can be
read (by the command line) without loading redis-py. See ``docs/redis.md``
for guarantees, sizing and recovery behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit import _lazy

if TYPE_CHECKING:
    from toolkit.channels.redis.errors import RedisUnavailable
    from toolkit.channels.redis.keys import DEFAULT_PREFIX, ChannelKeys
    from toolkit.channels.redis.options import ChannelOptions
    from toolkit.channels.redis.subscription import RedisSubscription
    from toolkit.channels.redis.sync import SyncRedisTransport
    from toolkit.channels.redis.transport import RedisTransport

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "ChannelKeys": "toolkit.channels.redis.keys",
    "ChannelOptions": "toolkit.channels.redis.options",
    "DEFAULT_PREFIX": "toolkit.channels.redis.keys",
    "RedisSubscription": "toolkit.channels.redis.subscription",
    "RedisTransport": "toolkit.channels.redis.transport",
    "RedisUnavailable": "toolkit.channels.redis.errors",
    "SyncRedisTransport": "toolkit.channels.redis.sync",
}

__getattr__, __dir__ = _lazy(__name__, _LAZY)

__all__ = [
    "DEFAULT_PREFIX",
    "ChannelKeys",
    "ChannelOptions",
    "RedisSubscription",
    "RedisTransport",
    "RedisUnavailable",
    "SyncRedisTransport",
]
