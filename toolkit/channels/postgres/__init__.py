"""PostgreSQL channels: tables claimed with ``FOR UPDATE SKIP LOCKED``.

Each message is a row of ``messages``; each group that has yet to settle it
has a row in ``deliveries`` (made by a trigger when the message is inserted,
or when a group is created later, for every message the channel holds). A
consumer claims due rows and leases them for the visibility timeout; ``NOTIFY``
wakes idle consumers at once, polling covers a lost notification. All objects
live in one schema named after the prefix, created on first use.

One job per module:

==================  ===========================================================
``transport``       :class:`PostgresTransport`: sending (coalesced), groups, wake-ups
``subscription``    :class:`PostgresSubscription`: claim, ack, renew, retry, reject
``dead_letters``    the dead-letter store: list, replay, purge
``status``          what a channel holds: length, lag, pending, consumers
``retention``       settled messages beyond the kept history deleted by consumers
``schema``          the tables, functions and trigger; :func:`install`
``rows``            envelopes as rows and back
``connection``      connections from a URL, a small pool
``errors``          what an error means: an outage or a real error
``pipe``            ``open_transport(url, settings)``
==================  ===========================================================

Names are imported on first use, so importing this package does not load
psycopg. See ``docs/postgres.md`` for the design, guarantees and figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit import _lazy

if TYPE_CHECKING:
    from toolkit.channels.postgres.errors import PostgresUnavailable
    from toolkit.channels.postgres.subscription import PostgresSubscription
    from toolkit.channels.postgres.transport import PostgresTransport, drop_schema, install_schema

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "PostgresSubscription": "toolkit.channels.postgres.subscription",
    "PostgresTransport": "toolkit.channels.postgres.transport",
    "PostgresUnavailable": "toolkit.channels.postgres.errors",
    "drop_schema": "toolkit.channels.postgres.transport",
    "install_schema": "toolkit.channels.postgres.transport",
}

__getattr__, __dir__ = _lazy(__name__, _LAZY)

__all__ = [
    "PostgresSubscription",
    "PostgresTransport",
    "PostgresUnavailable",
    "drop_schema",
    "install_schema",
]
