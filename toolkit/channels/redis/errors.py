"""What a Redis error means to the transport: transient, group gone, or a real error.

* transient: connection lost, timeout, and the replies of a server that cannot
  serve right now but will (``LOADING``, ``BUSY`` from a long script, ``OOM``
  under ``maxmemory``, ``READONLY`` / ``MASTERDOWN`` / ``NOREPLICAS`` around a
  failover, ``TRYAGAIN`` / ``CLUSTERDOWN`` on a cluster). Raised to the
  consumer as :class:`~toolkit.channels.base.TransportError` (see
  :func:`unavailable`), which keeps what it owes, backs off and tries again;
* NOGROUP / UNBLOCKED: the stream or the group was deleted under the
  consumer, which recreates the group and goes on;
* anything else is raised as it is.

redis-py turns some of these replies into their own classes and strips the
code from the message (``OOM command not allowed…`` becomes
``OutOfMemoryError("command not allowed…")``), others stay a ``ResponseError``
with the code in front (``BUSY Redis is busy…``): both are checked.
"""

from __future__ import annotations

import re
from typing import Final

import redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

from toolkit.channels.base import TransportError

__all__ = ["RedisUnavailable", "is_nogroup", "is_transient", "unavailable"]


class RedisUnavailable(TransportError):
    """Redis cannot be reached at the configured URL."""


def is_nogroup(exc: BaseException) -> bool:
    # UNBLOCKED: the stream or group was deleted while XREADGROUP was blocked on it.
    text = str(exc)
    return "NOGROUP" in text or text.startswith("UNBLOCKED")


# BusyLoadingError (LOADING) is a redis.ConnectionError; MasterDownError a ClusterDownError.
_TRANSIENT_TYPES: Final = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
    ClusterDownError,
    # a cluster that cannot be mapped now (no node answers, a slot without a
    # master mid-failover, redirections that did not settle)
    RedisClusterException,
    SlotNotCoveredError,
    ClusterError,
    # MOVED / ASK the transport did not follow itself (a slot moving): try again
    AskError,
)
# Error codes of replies redis-py left a plain ResponseError, at the start of the
# message or after a pipeline's "Command # n (...) of pipeline caused error: ('".
# "BUSY " with its space: BUSYGROUP is a real error.
_TRANSIENT_REPLY: Final = re.compile(
    r"(?:^|of pipeline caused error: \(?['\"]?)"
    r"(?:BUSY|OOM|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOREPLICAS) "
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    return isinstance(exc, ResponseError) and _TRANSIENT_REPLY.search(str(exc)) is not None


def unavailable(what: str, exc: BaseException) -> TransportError:
    """The TransportError for a transient failure while doing ``what``; caused by ``exc``."""
    error = TransportError(f"Redis unavailable while {what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
