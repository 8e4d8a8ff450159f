"""The in-memory transport against the shared channel behaviour suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from toolkit import InMemoryTransport


@pytest.fixture
async def transport() -> AsyncIterator[InMemoryTransport]:
    t = InMemoryTransport()
    yield t
    await t.close()


@pytest.fixture
def add_raw(transport: InMemoryTransport) -> Any:
    async def add(channel: str, fields: dict[str, Any]) -> None:
        transport.add_raw(channel, fields)

    return add


@pytest.fixture
def redelivery_wait() -> float:
    return 0.0
