"""Old import path of Redis connections from a URL; see :mod:`toolkit.channels.redis.connection`.

Kept so that existing imports go on working (the same objects).
"""

from __future__ import annotations

from toolkit.channels.redis.connection import (
    DEFAULT_URL,
    RedisUnavailable,
    async_client,
    check_async,
    check_sync,
    redact,
    resolve_url,
    sync_client,
)

__all__ = [
    "DEFAULT_URL",
    "RedisUnavailable",
    "async_client",
    "check_async",
    "check_sync",
    "redact",
    "resolve_url",
    "sync_client",
]
