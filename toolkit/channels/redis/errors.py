"""What a Redis error means to the transport: transient, group gone, or a real error.

* transient (connection lost, timeout, ``LOADING``, ``READONLY``, failover
  replies): raised to the consumer as :class:`~toolkit.channels.base.TransportError`
  (see :func:`unavailable`), which backs off and tries again;
* NOGROUP / UNBLOCKED: the stream or the group was deleted under the
  consumer, which recreates the group and goes on;
* anything else is raised as it is.
"""

from __future__ import annotations

from typing import Final

import redis
from redis.exceptions import ReadOnlyError, ResponseError

from toolkit.channels.base import TransportError

__all__ = ["RedisUnavailable", "is_nogroup", "is_transient", "unavailable"]


class RedisUnavailable(TransportError):
    """Redis cannot be reached at the configured URL."""


def is_nogroup(exc: BaseException) -> bool:
    # UNBLOCKED: the stream or group was deleted while XREADGROUP was blocked on it.
    text = str(exc)
    return "NOGROUP" in text or text.startswith("UNBLOCKED")


_TRANSIENT_REPLIES: Final = ("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ReadOnlyError, OSError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


def unavailable(what: str, exc: BaseException) -> TransportError:
    """The TransportError for a transient failure while doing ``what``; caused by ``exc``."""
    error = TransportError(f"Redis unavailable while {what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
