"""Fixtures of the tests every pipe runs: ``pipe`` is (URL, prefix) of a real server's
private space, once per pipe (a private redis-server, a PostgreSQL schema of its own)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from tests.postgres.conftest import postgres_url, schema
from tests.rabbitmq.conftest import amqp_url, rabbit_vhost
from tests.redis.conftest import prefix, redis_server, redis_url

__all__ = [
    "PipeUnderTest",
    "amqp_url",
    "pipe",
    "postgres_url",
    "prefix",
    "rabbit_vhost",
    "redis_server",
    "redis_url",
    "scheduling_pipe",
    "schema",
]


class PipeUnderTest(NamedTuple):
    url: str
    prefix: str


#: pipe -> (fixture giving its URL, fixture giving a private prefix on it)
PIPES = {
    "redis": ("redis_url", "prefix"),
    "postgres": ("postgres_url", "schema"),
    "rabbitmq": ("amqp_url", "prefix"),
}
#: the pipes that list and cancel the scheduled messages they keep (RabbitMQ keeps them
#: where they cannot be read back: test_scheduled_cli.py checks its refusal)
SCHEDULING = ("postgres", "redis")


def _pipe(request: pytest.FixtureRequest) -> PipeUnderTest:
    url_fixture, prefix_fixture = PIPES[request.param]
    return PipeUnderTest(
        request.getfixturevalue(url_fixture), request.getfixturevalue(prefix_fixture)
    )


@pytest.fixture(params=sorted(PIPES))
def pipe(request: pytest.FixtureRequest) -> PipeUnderTest:
    return _pipe(request)


@pytest.fixture(params=SCHEDULING)
def scheduling_pipe(request: pytest.FixtureRequest) -> PipeUnderTest:
    return _pipe(request)
