"""Old import path of the Redis key layout; it lives in :mod:`toolkit.channels.redis.keys` now.

Kept so that existing imports go on working (the same objects).
"""

from __future__ import annotations

from toolkit.channels.redis.keys import DEFAULT_PREFIX, ChannelKeys, validate_name

__all__ = ["DEFAULT_PREFIX", "ChannelKeys", "validate_name"]
