"""Pipes (one transport over several pipes) against the shared channel behaviour suite.

Every call goes through :class:`toolkit.pipes.Pipes` to the pipe's own
transport (in memory here): the composite must keep the whole contract,
dead letters and capabilities included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT, Features
from toolkit import InMemoryTransport
from toolkit.pipe_settings import Bindings
from toolkit.pipes import Pipes


@pytest.fixture
def features() -> Features:
    return Features(redelivery_wait=0.0, leases=False)


@pytest.fixture
async def transport() -> AsyncIterator[Pipes]:
    memory = InMemoryTransport(max_message_bytes=MESSAGE_LIMIT)
    pipes = Pipes(
        Bindings(pipes={"default": "memory://conformance"}), transports={"default": memory}
    )
    yield pipes
    await pipes.close()


@pytest.fixture
def add_raw(transport: Pipes) -> Any:
    async def add(channel: str, fields: dict[str, Any]) -> None:
        memory = transport.transport(channel)
        assert isinstance(memory, InMemoryTransport)
        memory.add_raw(channel, fields)

    return add
