"""The transactional outbox: rows commit or roll back with the caller's transaction, go out
through the generated publishers, keep their order per key across relays, survive outages."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from generated.user_service import (
    UserRegistered,
    UserServicePublisher,
    UserServiceSyncPublisher,
)
from tests.outbox.conftest import stream_ids
from tests.redis.messages import user_registered
from tests.redis.server import RedisServer
from toolkit import Envelope, Subscription
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main
from toolkit.outbox import Relay, install_outbox, outbox_for
from toolkit.pipe_settings import Bindings, PipeSettings
from toolkit.pipes import Pipes

CHANNEL = "user_events"


def registered(n: int) -> UserRegistered:
    return UserRegistered(
        user_id=uuid.uuid4(),
        email=f"user{n}@example.com",
        full_name=f"User {n}",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def relay_all(url: str, pipes: Pipes, prefix: str) -> None:
    stats = await Relay(url, pipes, prefix=prefix).run(until_empty=True)
    assert stats.failures == 0


@pytest.mark.parametrize("driver", ["psycopg-async", "psycopg-sync", "sqlite"])
async def test_a_rolled_back_transaction_publishes_nothing_and_a_committed_one_everything(
    driver: str,
    request: pytest.FixtureRequest,
    pipes: Pipes,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    committed: list[str] = []
    if driver == "sqlite":
        path = tmp_path / "app.db"
        url, table_prefix = f"sqlite:///{path}", "tk"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE users (email TEXT)")
        conn.commit()
        publisher = UserServiceSyncPublisher(outbox_for(conn))
        conn.execute("INSERT INTO users VALUES ('a@b.c')")
        committed.append(publisher.publish_user_registered(registered(1)).message_id)
        conn.commit()
        conn.execute("INSERT INTO users VALUES ('d@e.f')")
        publisher.publish_user_registered(registered(2))
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
        conn.close()
    else:
        url = request.getfixturevalue("postgres_url")
        table_prefix = request.getfixturevalue("schema")
        if driver == "psycopg-sync":
            with psycopg.connect(url) as sync_conn:
                sync = UserServiceSyncPublisher(outbox_for(sync_conn, prefix=table_prefix))
                with sync_conn.transaction():
                    committed.append(sync.publish_user_registered(registered(1)).message_id)
                with pytest.raises(ZeroDivisionError), sync_conn.transaction():
                    sync.publish_user_registered(registered(2))
                    1 / 0  # noqa: B018
        else:
            async with await psycopg.AsyncConnection.connect(url) as aconn:
                publisher_async = UserServicePublisher(outbox_for(aconn, prefix=table_prefix))
                async with aconn.transaction():
                    result = await publisher_async.publish_user_registered(registered(1))
                    committed.append(result.message_id)
                with pytest.raises(ZeroDivisionError):
                    async with aconn.transaction():
                        await publisher_async.publish_user_registered(registered(2))
                        1 / 0  # noqa: B018
    await relay_all(url, pipes, table_prefix)
    assert await stream_ids(redis_url, prefix, CHANNEL) == committed


async def test_what_the_consumer_receives_is_what_the_publisher_sent(
    postgres_url: str, schema: str, pipes: Pipes, redis_url: str, prefix: str
) -> None:
    event = registered(7)
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn, conn.transaction():
        publisher = UserServicePublisher(outbox_for(conn, prefix=schema))
        result = await publisher.publish_user_registered(event, metadata={"tenant": "t1"})
    await relay_all(postgres_url, pipes, schema)
    transport = RedisTransport(redis_url, prefix=prefix)
    try:
        sub = await transport.subscribe(CHANNEL, "reader", "r")
        [delivery] = await sub.receive(10, 0.1)
    finally:
        await transport.close()
    headers = delivery.envelope.headers
    assert headers.message_id == result.message_id
    assert (headers.routing_key, headers.kind, headers.source_service) == (
        "user.registered",
        "event",
        "user_service",
    )
    assert headers.metadata == {"tenant": "t1"}
    assert msgspec.json.decode(delivery.envelope.body, type=UserRegistered) == event


async def test_the_table_is_created_once_by_concurrent_first_users(
    postgres_url: str, schema: str
) -> None:
    async def first_use() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn, conn.transaction():
            await outbox_for(conn, prefix=schema).send(CHANNEL, [user_registered()])

    await asyncio.gather(*(first_use() for _ in range(4)))
    assert await install_outbox(postgres_url, prefix=schema) is False
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(f'SELECT count(*) FROM "{schema}".outbox').fetchone() == (4,)


async def test_install_outbox_creates_the_table_ahead_of_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert await install_outbox(url) is True
    assert await install_outbox(url) is False


class Unhurried:
    """A real transport whose sends take a little, and a varying, while: relays overlap."""

    def __init__(self, transport: Pipes, seed: int) -> None:
        self.transport = transport
        self.rng = random.Random(seed)

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.01))
        await self.transport.send(channel, envelopes)

    async def subscribe(self, channel: str, group: str, consumer: str) -> Subscription:
        raise NotImplementedError

    async def close(self) -> None:
        pass


async def test_order_per_key_is_kept_with_two_relays_at_once(
    postgres_url: str, schema: str, pipes: Pipes, redis_url: str, prefix: str
) -> None:
    keys = [f"order-{k}" for k in range(9)]
    sequence: dict[str, tuple[str, int]] = {}  # message id -> (key, its number within the key)

    async def writer(mine: list[str], rng: random.Random) -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            for n in range(60):
                for key in rng.sample(mine, len(mine)):
                    async with conn.transaction():
                        envelopes = [user_registered() for _ in range(rng.randint(1, 4))]
                        await outbox_for(conn, key=key, prefix=schema).send(CHANNEL, envelopes)
                    for i, e in enumerate(envelopes):
                        sequence[e.headers.message_id] = (key, n * 10 + i)

    relays = [
        Relay(postgres_url, Unhurried(pipes, r), prefix=schema, batch_size=23, poll_interval=0.01)
        for r in range(2)
    ]
    async with relays[0].running(), relays[1].running():
        await asyncio.gather(*(writer(keys[w::3], random.Random(w)) for w in range(3)))
    for relay in relays:
        await relay.run(until_empty=True)
    assert all(relay.stats.relayed > 0 for relay in relays), [r.stats for r in relays]

    ids = await stream_ids(redis_url, prefix, CHANNEL)
    assert sorted(ids) == sorted(sequence), "lost or duplicated"
    last: dict[str, int] = {}
    for mid in ids:
        key, number = sequence[mid]
        assert number > last.get(key, -1), f"{key}: {number} after {last[key]}"
        last[key] = number


async def test_a_broker_outage_loses_nothing(
    postgres_url: str, schema: str, tmp_path: Path, prefix: str
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    pipes = Pipes(Bindings(pipes={"default": server.url}), PipeSettings(prefix=prefix))
    relay = Relay(postgres_url, pipes, prefix=schema, batch_size=50, max_backoff=0.2)
    sent: list[str] = []

    async def write(count: int) -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            for _ in range(count):
                async with conn.transaction():
                    envelope = user_registered()
                    await outbox_for(conn, prefix=schema).send(CHANNEL, [envelope])
                sent.append(envelope.headers.message_id)

    try:
        async with relay.running():
            await write(300)
            server.stop()
            await write(300)  # the application goes on while the broker is down
            # Until the relay has met the outage (on a loaded machine it may still be
            # sleeping between polls when the writes are done).
            async with asyncio.timeout(30):
                while relay.stats.failures == 0:
                    await asyncio.sleep(0.05)
            server.start()
            await write(300)
            while await relay.store.pending():
                await asyncio.sleep(0.05)
        assert relay.stats.failures > 0, "the outage was never noticed"
        ids = await stream_ids(server.url, prefix, CHANNEL)
    finally:
        await pipes.close()
        server.stop()
    assert set(ids) == set(sent)
    assert len(ids) - len(set(ids)) <= relay.stats.failures * relay.batch_size


def test_the_command_line_refuses_a_bad_outbox_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases: list[tuple[str, Any]] = [
        ("redis://localhost:6379/0", "has scheme redis://"),
        ("postgresql://ann:secret@127.0.0.1:1/app", "cannot reach PostgreSQL"),
        (f"sqlite:///{tmp_path / 'missing.db'}", "no SQLite database at"),
        ("sqlite://host/app.db", "a SQLite outbox is sqlite:///"),
    ]
    for url, expected in cases:
        assert main(["relay", "--outbox", url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("toolkit relay: ") and expected in err, err
        assert err.count("\n") == 1 and "secret" not in err, err
