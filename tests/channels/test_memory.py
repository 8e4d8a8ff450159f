"""The in-memory transport against the shared channel behaviour suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT, Features
from toolkit import InMemoryTransport


@pytest.fixture
def features() -> Features:
    # A message stays with its consumer until it is settled or the consumer closes.
    return Features(redelivery_wait=0.0, leases=False)


@pytest.fixture
async def transport() -> AsyncIterator[InMemoryTransport]:
    t = InMemoryTransport(max_message_bytes=MESSAGE_LIMIT)
    yield t
    await t.close()


@pytest.fixture
def add_raw(transport: InMemoryTransport) -> Any:
    async def add(channel: str, fields: dict[str, Any]) -> None:
        transport.add_raw(channel, fields)

    return add
