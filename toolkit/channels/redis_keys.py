"""Old import path of the Redis key layout; it lives in :mod:`toolkit.channels.redis.keys` now.

Kept so that existing imports go on working (the same objects).
"""

from __future__ import annotations

from toolkit.channels.redis.keys import *  # noqa: F403
from toolkit.channels.redis.keys import __all__ as __all__
