"""Fixtures of the tests every pipe runs: ``pipe`` is (URL, prefix) of a real server's
private space, once per pipe (a private redis-server, a PostgreSQL schema of its own)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from tests.postgres.conftest import postgres_url, schema
from tests.redis.conftest import prefix, redis_server, redis_url

__all__ = ["PipeUnderTest", "pipe", "postgres_url", "prefix", "redis_server", "redis_url", "schema"]


class PipeUnderTest(NamedTuple):
    url: str
    prefix: str


#: pipe -> (fixture giving its URL, fixture giving a private prefix on it)
PIPES = {
    "redis": ("redis_url", "prefix"),
    "postgres": ("postgres_url", "schema"),
}


@pytest.fixture(params=sorted(PIPES))
def pipe(request: pytest.FixtureRequest) -> PipeUnderTest:
    url_fixture, prefix_fixture = PIPES[request.param]
    return PipeUnderTest(
        request.getfixturevalue(url_fixture), request.getfixturevalue(prefix_fixture)
    )
