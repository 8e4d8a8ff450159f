"""Outages: the server restarted under a publisher and a consumer (a private cluster), and
every connection cut on the shared server (``pg_terminate_backend``). The consumer keeps
running, outages surface as TransportError, and nothing confirmed is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import generated.ticket_service as ticket_service
from tests.channels.suite.helpers import Running
from tests.postgres.server import PrivateCluster
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import Consumer, RetryPolicy, TransportError
from toolkit.channels.postgres import PostgresTransport, PostgresUnavailable

CHANNEL = "ticket_commands"
RETRY = RetryPolicy(attempts=3, base=0.05, cap=0.2, jitter=0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    found = PrivateCluster()
    try:
        yield found.init()
    finally:
        found.remove()


async def publish_through(
    transport: PostgresTransport, total: int, outage: asyncio.Event, confirmed: list[str]
) -> int:
    """Send ``total`` messages one batch of 10 at a time, retrying what fails; the ids whose
    send returned go into ``confirmed``. Returns how many sends failed."""
    failures = 0
    for start in range(0, total, 10):
        batch = [ticket_create(i) for i in range(start, start + 10)]
        while True:
            try:
                await transport.send(CHANNEL, batch)
                break
            except TransportError:
                failures += 1
                outage.set()
                await asyncio.sleep(0.1)
        confirmed.extend(e.headers.message_id for e in batch)
        await asyncio.sleep(0.005)
    return failures


async def outage_survived(url: str, schema: str, cause_outage: object, *, sends_fail: bool) -> None:
    transport = PostgresTransport(url, prefix=schema, visibility_timeout=2)
    handlers = Memory()
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), retry=RETRY)
    confirmed: list[str] = []
    outage = asyncio.Event()
    async with Running(consumer):
        publishing = asyncio.ensure_future(publish_through(transport, 2000, outage, confirmed))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(cause_outage)  # type: ignore[arg-type]
        failures = await asyncio.wait_for(publishing, 120)
        deadline = time.monotonic() + 60
        while not set(confirmed) <= {d.message_id for d in handlers.deliveries}:
            assert time.monotonic() < deadline, "confirmed messages were not handled"
            await asyncio.sleep(0.1)
    await transport.close()
    if sends_fail:
        assert failures > 0, "the outage never reached the publisher"
    handled = {d.message_id for d in handlers.deliveries}
    assert set(confirmed) <= handled
    assert consumer.stats.processed >= len(confirmed)


def test_a_restarted_server_loses_nothing_confirmed(cluster: PrivateCluster) -> None:
    schema = f"restart_{uuid.uuid4().hex[:8]}"

    def restart() -> None:
        cluster.stop("fast")
        time.sleep(1.0)  # down for a while: sends fail, the consumer backs off
        cluster.start()

    asyncio.run(outage_survived(cluster.url, schema, restart, sends_fail=True))


def test_connections_cut_on_a_live_server_lose_nothing(postgres_url: str, schema: str) -> None:
    name = f"tk_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}?application_name={name}"

    def cut() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for _ in range(5):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                )
                time.sleep(0.2)

    asyncio.run(outage_survived(url, schema, cut, sends_fail=False))


async def _check(url: str) -> None:
    await PostgresTransport(url, prefix="unused").check()


def test_check_names_the_server_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable) as caught:
        asyncio.run(_check("postgresql://ann:s3cret@127.0.0.1:1/db"))
    text = str(caught.value)
    assert "s3cret" not in text and "ann:***@127.0.0.1:1" in text
    assert text.startswith("cannot reach PostgreSQL at postgresql://ann:***@127.0.0.1:1/db: ")
