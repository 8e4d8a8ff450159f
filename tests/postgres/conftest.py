"""Fixtures for tests against the shared PostgreSQL: a schema of its own per test, dropped
afterwards (see :mod:`tests.postgres.server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres.server import drop, require_postgres, unique_schema


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_postgres()


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    name = unique_schema()
    yield name
    drop(postgres_url, name)
