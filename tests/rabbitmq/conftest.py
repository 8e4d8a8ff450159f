"""Fixtures for tests against a real RabbitMQ: a private vhost per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.rabbitmq.broker import Vhost


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[Vhost]:
    vhost = Vhost()
    yield vhost
    vhost.delete()


@pytest.fixture
def amqp_url(rabbit_vhost: Vhost) -> str:
    return rabbit_vhost.url


@pytest.fixture
def prefix() -> str:
    """A name prefix of its own per test: tests share the vhost, never queues."""
    return f"t{uuid.uuid4().hex[:10]}"
