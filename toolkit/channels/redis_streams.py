"""Old import path of the Redis transport; it lives in :mod:`toolkit.channels.redis` now.

Kept so that existing imports go on working: every name here is the same
object as in the package.
"""

from __future__ import annotations

from toolkit.channels.redis.entries import DLQ_PREFIX, F_REPLAY_GROUP, parse_entry
from toolkit.channels.redis.options import ChannelOptions
from toolkit.channels.redis.subscription import RedisSubscription
from toolkit.channels.redis.sync import SyncRedisTransport
from toolkit.channels.redis.transport import RedisTransport

__all__ = [
    "DLQ_PREFIX",
    "F_REPLAY_GROUP",
    "ChannelOptions",
    "RedisSubscription",
    "RedisTransport",
    "SyncRedisTransport",
    "parse_entry",
]
