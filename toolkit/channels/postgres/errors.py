"""What a PostgreSQL error means to the transport: an outage, or a real error.

* an outage: the connection is lost or refused, the server is shutting down
  or starting (``57P01`` admin shutdown, ``57P03`` cannot connect now), too
  many connections, a deadlock or serialization failure (retrying helps). Raised
  to callers as :class:`PostgresUnavailable`, a
  :class:`~toolkit.channels.base.TransportError`: the consumer keeps what it
  owes, backs off and tries again;
* anything else (a constraint, a syntax error: a bug) is raised as it is.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from toolkit.channels.base import TransportError

__all__ = ["PostgresUnavailable", "is_transient", "unavailable"]


class PostgresUnavailable(TransportError):
    """PostgreSQL cannot be reached at the configured URL, or cannot serve right now."""


# OperationalError covers a lost or refused connection, admin shutdown, "cannot
# connect now", too many connections, deadlocks and lock timeouts.
_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,  # the connection is closed
    pg_errors.SerializationFailure,
    OSError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def unavailable(what: str, exc: BaseException) -> PostgresUnavailable:
    """The error for an outage while doing ``what``; caused by ``exc``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    error = PostgresUnavailable(
        f"PostgreSQL unavailable while {what}: {type(exc).__name__}: {text}"
    )
    error.__cause__ = exc
    return error
