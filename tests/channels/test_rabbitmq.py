"""The RabbitMQ transport against the shared channel behaviour suite (a private vhost)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.channels.conformance import *  # noqa: F403
from tests.channels.conformance import MESSAGE_LIMIT, Features
from tests.rabbitmq.broker import Vhost
from toolkit.channels.rabbitmq import RabbitTransport


@pytest.fixture(scope="module")
def rabbit_vhost() -> Iterator[Vhost]:
    vhost = Vhost()
    yield vhost
    vhost.delete()


@pytest.fixture
async def transport(rabbit_vhost: Vhost) -> AsyncIterator[RabbitTransport]:
    t = RabbitTransport(
        rabbit_vhost.url, prefix=f"conf{uuid.uuid4().hex[:8]}", max_message_bytes=MESSAGE_LIMIT
    )
    await t.check()
    yield t
    await t.delete_declared()  # each queue holds file handles on the shared broker
    await t.close()


@pytest.fixture
def add_raw(transport: RabbitTransport) -> Any:
    async def add(channel: str, fields: dict[str, Any]) -> None:
        await transport.add_raw(channel, fields)

    return add


@pytest.fixture
def features() -> Features:
    # A delivery stays with its consumer until its AMQP channel closes: no leases.
    # A group made after others exist starts at its creation, and a consumer is pushed
    # up to a batch ahead of asking (prefetch): docs/rabbitmq.md.
    # No store of handled ids: refused with a clear error. Scheduled messages wait in
    # the broker's TTL queues, which cannot be read back: listing and cancelling them
    # are refused (docs/rabbitmq.md#scheduled-messages).
    return Features(
        redelivery_wait=0.0,
        leases=False,
        late_groups_see_history=False,
        pushes_ahead=True,
        deduplication=False,
        lists_scheduled=False,
    )
