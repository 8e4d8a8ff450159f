"""Leases (``RenewsLeases``): a message renewed past the visibility timeout stays with its
consumer; a renewal never takes back what another consumer reclaimed or what was settled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.channels.suite.helpers import Features, channel_name, envelope, needs, receive_all
from toolkit import Delivery, RenewsLeases, Transport

pytestmark = pytest.mark.asyncio


async def one_held(transport: Transport, features: Features) -> tuple[Any, Any, Delivery]:
    """Two consumers of one group (both leasing subscriptions) and one message, received
    by the first."""
    needs(features.leases, "leases")
    ch = channel_name()
    first = await transport.subscribe(ch, "svc", "c1")
    second = await transport.subscribe(ch, "svc", "c2")
    assert isinstance(first, RenewsLeases) and isinstance(second, RenewsLeases)
    await transport.send(ch, [envelope()])
    [held] = await receive_all(first, 1)
    return first, second, held


async def test_a_message_renewed_past_the_visibility_timeout_stays_with_its_consumer(
    transport: Transport, features: Features
) -> None:
    holder, other, held = await one_held(transport, features)
    timeout = holder.visibility_timeout
    deadline = time.monotonic() + 3 * timeout
    while time.monotonic() < deadline:
        assert await holder.renew([held]) == []
        # The other consumer keeps asking (and checking for idle messages) meanwhile.
        assert list(await other.receive(10, timeout / 3)) == []
    await holder.ack([held])
    assert held.delivery_count == 1
    await asyncio.sleep(timeout)
    assert list(await other.receive(10, timeout / 2)) == []
    await holder.close()
    await other.close()


async def test_renewing_does_not_take_back_a_reclaimed_or_settled_message(
    transport: Transport, features: Features
) -> None:
    first, second, stale = await one_held(transport, features)
    # c1 stalls past the visibility timeout: c2 reclaims the message.
    await asyncio.sleep(first.visibility_timeout + 0.1)
    [reclaimed] = await receive_all(second, 1)
    assert reclaimed.message_id == stale.message_id and reclaimed.delivery_count == 2
    assert await first.renew([stale]) == [stale]
    # Still c2's: its own renewal finds it held.
    assert await second.renew([reclaimed]) == []
    await second.ack([reclaimed])
    assert await second.renew([reclaimed]) == [reclaimed]
    await first.close()
    await second.close()
