"""The transactional outbox: publish in your own database transaction, relay afterwards.

:func:`outbox_for` gives a transport over the caller's connection (psycopg 3,
async or not, or sqlite3): the generated publishers write their messages into
the outbox table in the caller's transaction, so a message exists exactly when
the transaction that made it committed. A :class:`Relay` (``toolkit relay``)
moves committed rows to their channels, in order per partition, at least
once. See ``docs/delivery.md``.

==============  ==============================================================
``writer``      :class:`Outbox`, :class:`SyncOutbox`, :func:`outbox_for`, :func:`install_outbox`
``relay``       :class:`Relay`: batches to the channels, backoff across outages
``store``       the relay's side of the table: claims (partition locks), deletes
``table``       the table's layout, DDL and row encoding (the wire form); URLs
==============  ==============================================================

Names are imported on first use; psycopg and sqlite3 only when a connection of theirs is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit import _lazy

if TYPE_CHECKING:
    from toolkit.outbox.relay import Relay, RelayStats
    from toolkit.outbox.store import OutboxUnavailable
    from toolkit.outbox.table import OutboxUrlError
    from toolkit.outbox.writer import Outbox, SyncOutbox, install_outbox, outbox_for

_LAZY: dict[str, str] = {
    "Outbox": "toolkit.outbox.writer",
    "OutboxUnavailable": "toolkit.outbox.store",
    "OutboxUrlError": "toolkit.outbox.table",
    "Relay": "toolkit.outbox.relay",
    "RelayStats": "toolkit.outbox.relay",
    "SyncOutbox": "toolkit.outbox.writer",
    "install_outbox": "toolkit.outbox.writer",
    "outbox_for": "toolkit.outbox.writer",
}

__getattr__, __dir__ = _lazy(__name__, _LAZY)

__all__ = [
    "Outbox",
    "OutboxUnavailable",
    "OutboxUrlError",
    "Relay",
    "RelayStats",
    "SyncOutbox",
    "install_outbox",
    "outbox_for",
]
