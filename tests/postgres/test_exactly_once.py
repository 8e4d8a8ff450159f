"""Exactly-once effect on PostgreSQL: a handler's writes through the step's transaction
commit with the message's record and acknowledgement, or not at all.

(The SIGKILL test with it on is in tests/postgres/test_crash.py.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

import generated.ticket_service as ticket_service
from tests.cli import toolkit_cli
from tests.postgres.apps import write_effect
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create, user_registered
from toolkit import Consumer, Delivery, InMemoryTransport, Runner, RunOptions
from toolkit.channels.postgres import PostgresTransport
from toolkit.consumer import ConsumerStats, ExactlyOnceUnsupported
from toolkit.context import current_transaction
from toolkit.outbox import outbox_for
from toolkit.retry import RetryPolicy

CHANNEL = "ticket_commands"


class Writer:
    """Writes a row per handling through the transaction; ``fail`` says when to fail after."""

    def __init__(self, table: str, fail: Any = None) -> None:
        self.table = table
        self.fail = fail
        self.runs: list[tuple[str, int]] = []

    async def on_ticket_create(self, message: Any, meta: Delivery) -> None:
        self.runs.append((meta.message_id, meta.delivery_count))
        await write_effect(self.table, meta)
        if self.fail is not None:
            await self.fail(message, meta)

    def on_user_registered(self, message: Any, meta: Delivery) -> None: ...

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None: ...


@pytest.fixture
async def pipe(postgres_url: str, schema: str) -> AsyncIterator[tuple[PostgresTransport, str]]:
    """The pipe in the test's schema, and a table of the service's beside it."""
    transport = PostgresTransport(postgres_url, prefix=schema)
    table = f"{transport._s}.effects"
    async with transport.pool.connection("test") as conn:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {transport._s}")
        await conn.execute(f"CREATE TABLE {table} (message_id text, delivery int)")
    yield transport, table
    await transport.close()


async def drain(transport: PostgresTransport, handlers: Any, **more: Any) -> ConsumerStats:
    return await Runner(transport, CHANNEL, ticket_service.bind(handlers), options(**more)).run()


async def rows(transport: PostgresTransport, sql: str) -> list[tuple[Any, ...]]:
    async with transport.pool.connection("test") as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


def ticket(n: int) -> Any:
    return ticket_create(n, message_id=f"m-{n}")


def options(**more: Any) -> RunOptions:
    more.setdefault("retry", RetryPolicy(attempts=3, base=0.01, cap=0.01))
    return RunOptions(until_empty=True, deduplicate=3600.0, exactly_once=True, **more)


async def test_a_failing_handler_leaves_no_row_and_is_retried(
    pipe: tuple[PostgresTransport, str], schema: str
) -> None:
    transport, table = pipe

    async def fail_first(message: Any, meta: Delivery) -> None:
        if message.subject in ("ticket 3", "ticket 12") and meta.delivery_count == 1:
            raise RuntimeError("boom after writing")

    handlers = Writer(table, fail_first)
    await transport.send(CHANNEL, [ticket(i) for i in range(25)])
    stats = await drain(transport, handlers, batch_size=25)
    assert (stats.handled, stats.retried, stats.failed) == (25, 2, 0)
    # The failed attempts' rows were rolled back with their savepoints, nothing else was:
    # one row per message, the failing ones from their second delivery.
    written = await rows(transport, f"SELECT message_id, delivery FROM {table}")
    assert len(written) == 25
    assert {m for m, _ in written} == {f"m-{i}" for i in range(25)}
    assert sorted(m for m, d in written if d == 2) == ["m-12", "m-3"]
    assert len(handlers.runs) == 27
    left = await rows(transport, f"SELECT count(*) FROM {schema}.deliveries")
    recorded = await rows(transport, f"SELECT count(*) FROM {schema}.handled")
    assert (left, recorded) == ([(0,)], [(25,)])


async def test_a_handler_returning_with_the_transaction_aborted_is_rolled_back_and_retried(
    pipe: tuple[PostgresTransport, str],
) -> None:
    transport, table = pipe

    async def swallow_an_error(message: Any, meta: Delivery) -> None:
        if meta.delivery_count == 1:
            conn = current_transaction()
            assert conn is not None
            with contextlib.suppress(psycopg.Error):  # caught: the transaction is in error
                await conn.execute("SELECT 1 / 0")

    handlers = Writer(table, swallow_an_error)
    await transport.send(CHANNEL, [ticket(i) for i in range(3)])
    stats = await drain(transport, handlers)
    assert (stats.handled, stats.retried) == (3, 3)
    written = await rows(transport, f"SELECT message_id, delivery FROM {table} ORDER BY 1")
    assert written == [("m-0", 2), ("m-1", 2), ("m-2", 2)]


async def test_a_recorded_message_is_acknowledged_in_the_transaction_without_a_run(
    pipe: tuple[PostgresTransport, str], schema: str
) -> None:
    """Copies (same id) are acknowledged unhandled, in the same batch or a later one."""
    transport, table = pipe
    handlers = Writer(table)
    sent = [ticket(i) for i in range(5)]
    await transport.send(CHANNEL, [*sent, sent[1], sent[4]])
    await transport.send(CHANNEL, [sent[0]])
    stats = await drain(transport, handlers)
    assert (stats.handled, stats.deduplicated) == (5, 3)
    assert len(await rows(transport, f"SELECT * FROM {table}")) == 5
    assert await rows(transport, f"SELECT count(*) FROM {schema}.deliveries") == [(0,)]


async def test_a_synchronous_handler_in_a_thread_gets_a_clear_error(
    pipe: tuple[PostgresTransport, str],
) -> None:
    transport, _ = pipe
    errors: list[BaseException] = []

    def in_thread(message: Any, meta: Delivery) -> None:
        try:
            current_transaction()
        except RuntimeError as exc:
            errors.append(exc)
            raise

    await transport.send(CHANNEL, [ticket_create(0)])
    stats = await drain(
        transport, Memory(in_thread), sync_handlers="thread", retry=RetryPolicy(attempts=1)
    )
    assert stats.failed == 1
    assert "async def" in str(errors[0])
    assert current_transaction() is None  # outside handlers


async def test_a_pipe_that_cannot_is_refused_at_startup() -> None:
    consumer = Consumer(
        InMemoryTransport(),
        CHANNEL,
        ticket_service.bind(Memory()),
        deduplicate=60.0,
        exactly_once=True,
    )
    with pytest.raises(ExactlyOnceUnsupported, match=r"InMemoryTransport.*only PostgreSQL"):
        await consumer.subscription()


@pytest.mark.parametrize("more", [{}, {"deduplicate": 60.0, "concurrency": 2}])
def test_without_deduplication_or_with_concurrency_it_is_refused(more: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly-once effect needs deduplication"):
        Consumer(
            InMemoryTransport(), CHANNEL, ticket_service.bind(Memory()), exactly_once=True, **more
        )


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ((), "--exactly-once needs --deduplicate WINDOW"),
        (("--deduplicate", "1h", "--concurrency", "2"), "and --concurrency 1"),
        (("--deduplicate", "1h"), "its pipe (InMemoryTransport) cannot commit"),
    ],
)
def test_the_command_line_refuses_it_clearly(flags: tuple[str, ...], error: str) -> None:
    done = toolkit_cli(
        *("run", "ticket_service", "--app", "tests.redis.apps:Memory", "--url", "memory://"),
        *("--exactly-once", *flags),
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the startup line, if it started
    assert last.startswith("toolkit run: ") and error in last, done.stderr


async def test_messages_sent_through_the_outbox_on_the_transaction_are_part_of_the_effect(
    pipe: tuple[PostgresTransport, str], schema: str
) -> None:
    """A failed attempt's outbox rows go with its savepoint: one event per message."""
    transport, table = pipe

    async def publish_then_fail_first(message: Any, meta: Delivery) -> None:
        conn = current_transaction()
        assert conn is not None
        await outbox_for(conn, prefix=schema).send("user_events", [user_registered()])
        if meta.delivery_count == 1:
            raise RuntimeError("boom after publishing")

    await transport.send(CHANNEL, [ticket(i) for i in range(3)])
    stats = await drain(transport, Writer(table, publish_then_fail_first))
    assert (stats.handled, stats.retried) == (3, 3)
    assert await rows(transport, f"SELECT count(*) FROM {schema}.outbox") == [(3,)]
