"""Old import path of Redis connections from a URL; see :mod:`toolkit.channels.redis.connection`.

Kept so that existing imports go on working (the same objects).
"""

from __future__ import annotations

from toolkit.channels.redis.connection import *  # noqa: F403
from toolkit.channels.redis.connection import __all__ as __all__
