"""Handlers whose effect is a row written through the step's transaction (exactly-once effect).

``Effects`` (for ``toolkit run --app tests.postgres.apps:Effects --deduplicate W
--exactly-once`` in a child process) inserts ``(message_id, delivery count)`` into the
table named by ``TOOLKIT_TEST_EFFECTS`` through :func:`toolkit.context.current_transaction`,
and, as ``tests.redis.apps.Recorder`` does, appends a line to ``TOOLKIT_TEST_LOG``
(outside the transaction: it shows every time a handler ran, committed or not).
"""

from __future__ import annotations

import os
from typing import Any

from tests.redis.apps import Recorder
from toolkit import Delivery
from toolkit.context import current_transaction


async def write_effect(table: str, meta: Delivery) -> None:
    """The handler's own write: one row per handling, through the step's transaction."""
    conn = current_transaction()
    assert conn is not None, "not running with exactly-once effect"
    await conn.execute(
        f"INSERT INTO {table} (message_id, delivery) VALUES (%s, %s)",
        (meta.message_id, meta.delivery_count),
    )


class Effects(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self._table = os.environ["TOOLKIT_TEST_EFFECTS"]

    async def on_ticket_create(self, message: Any, meta: Delivery) -> None:  # type: ignore[override]
        await write_effect(self._table, meta)
        self._record(meta)
