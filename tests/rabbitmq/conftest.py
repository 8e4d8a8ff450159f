"""Fixtures for tests against a real RabbitMQ: a private vhost per test session, or a
private node of its own for a test that restarts the broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.rabbitmq.broker import Vhost
from tests.rabbitmq.server import RabbitNode, available


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


@pytest.fixture
def node() -> Iterator[RabbitNode]:
    if not available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("rabbitmq-server is not installed, and CI=true: restart tests must run")
        pytest.skip("rabbitmq-server is not installed")
    node = RabbitNode().start()
    yield node
    node.stop()
