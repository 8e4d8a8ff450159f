"""The PostgreSQL transport against the shared channel behaviour suite (a private schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT, Features
from tests.postgres.server import drop, require_postgres, unique_schema
from toolkit.channels.postgres import PostgresTransport

VISIBILITY = 0.5


@pytest.fixture(scope="module")
def postgres_url() -> str:
    return require_postgres()


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A schema of its own per test (suite tests share channel names), dropped afterwards."""
    schema = unique_schema("conf")
    yield postgres_url, schema
    drop(postgres_url, schema)


@pytest.fixture
async def transport(postgres: tuple[str, str]) -> AsyncIterator[PostgresTransport]:
    url, schema = postgres
    t = PostgresTransport(
        url, prefix=schema, visibility_timeout=VISIBILITY, max_message_bytes=MESSAGE_LIMIT
    )
    await t.check()
    yield t
    await t.close()


@pytest.fixture
def add_raw(transport: PostgresTransport) -> Any:
    async def add(channel: str, fields: dict[str, Any]) -> None:
        await transport.add_raw(channel, fields)

    return add


@pytest.fixture
def features() -> Features:
    return Features(redelivery_wait=VISIBILITY + 0.1, scheduling=True)
