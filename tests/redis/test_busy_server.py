"""A server that answers but cannot serve right now (OOM under maxmemory, BUSY running a
long script) is an outage: the consumer keeps running, keeps what it owes and settles it
once the server recovers. Each test has a redis-server of its own (CONFIG SET)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.conftest import require_redis_server
from tests.redis.messages import ticket_create
from tests.redis.test_consumer import Running, wait_for
from toolkit import Consumer, Rejected, RetryPolicy
from toolkit.channels.redis import RedisTransport

CHANNEL = "ticket_commands"
GROUP = "ticket_service"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    from tests.redis.server import RedisServer

    require_redis_server()
    started = RedisServer(tmp_path / "redis").start()
    yield started
    started.stop()


async def test_out_of_memory_is_waited_out_and_nothing_owed_is_lost(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RedisTransport(server.url, prefix="oom")
    admin = redis.Redis(port=server.port)

    def behaviour(message: Any, meta: Any) -> None:
        if message.subject == "reject me":
            raise Rejected("not wanted")
        if message.subject == "fail once" and meta.delivery_count == 1:
            raise RuntimeError("try again")

    handlers = Memory(behaviour)
    consumer = Consumer(
        transport,
        CHANNEL,
        ticket_service.bind(handlers),
        retry=RetryPolicy(attempts=2, base=0.05, jitter=0),
        block_timeout=0.2,
    )
    good = [ticket_create(i) for i in range(10)]
    reject_me = ticket_create(body=_body("reject me"))
    fail_once = ticket_create(body=_body("fail once"))
    try:
        await consumer.subscription()
        await transport.send(CHANNEL, [*good[:5], reject_me, fail_once, *good[5:]])
        await transport.add_raw(CHANNEL, {"routing_key": "ticket.create", "body": "{}"})
        # Over maxmemory: every write that needs memory (XADD, ZADD) answers OOM; reads
        # and XACK still work.
        admin.set("ballast", b"x" * 2_000_000)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1mb")
        with caplog.at_level(logging.WARNING):
            async with Running(consumer):
                await wait_for(lambda: len(handlers.ids) == 10)
                await asyncio.sleep(0.5)  # a few settling attempts, each refused
                assert await transport.dead_letters(CHANNEL) == []
                admin.config_set("maxmemory", "0")
                await wait_for(lambda: fail_once.headers.message_id in handlers.ids)
                await wait_for(lambda: consumer.stats.rejected == 2)
        assert any("command not allowed when used memory" in r.message for r in caplog.records)
        # Each handled once: the retry of "fail once" is its second delivery.
        assert handlers.ids == [*(e.headers.message_id for e in good), fail_once.headers.message_id]
        assert handlers.deliveries[-1].delivery_count == 2
        dead = await transport.dead_letters(CHANNEL)
        assert sorted(d.reason.split(":")[0] for d in dead) == [
            "invalid envelope",
            "rejected by handler",
        ]
        assert await transport.pending_count(CHANNEL, GROUP) == 0
    finally:
        admin.config_set("maxmemory", "0")
        admin.close()
        await transport.close()


async def test_busy_script_is_waited_out_and_the_batch_is_acknowledged_once(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RedisTransport(server.url, prefix="busy")
    admin = redis.Redis(port=server.port)
    admin.config_set("busy-reply-threshold", "50")  # lua-time-limit, ms
    busy_for = 1.0

    def run_script() -> None:
        client = redis.Redis(port=server.port)
        until = int((time.time() + busy_for) * 1_000_000)
        client.eval(
            "while true do local t = redis.call('TIME') "
            "if t[1] * 1000000 + t[2] > tonumber(ARGV[1]) then return 1 end end",
            0,
            until,
        )
        client.close()

    script = threading.Thread(target=run_script)

    def first_starts_the_script(message: Any, meta: Any) -> None:
        if not script.is_alive() and not handlers.ids:
            script.start()
            time.sleep(0.2)  # past the threshold: the batch's XACK will get BUSY

    handlers = Memory(first_starts_the_script)
    consumer = Consumer(transport, CHANNEL, ticket_service.bind(handlers), block_timeout=0.2)
    sent = [ticket_create(i) for i in range(50)]
    try:
        await consumer.subscription()
        await transport.send(CHANNEL, sent)
        with caplog.at_level(logging.WARNING):
            async with Running(consumer):
                await wait_for(lambda: len(handlers.ids) == 50)
                await asyncio.to_thread(script.join)
                await wait_for(lambda: "available again" in caplog.text)
        assert "BUSY Redis is busy running a script" in caplog.text
        assert handlers.ids == [e.headers.message_id for e in sent]
        assert await transport.pending_count(CHANNEL, GROUP) == 0
    finally:
        if script.is_alive():
            script.join()
        admin.close()
        await transport.close()


def _body(subject: str) -> bytes:
    return (
        b'{"ticket_id":"7d0e3f5e-8f63-4a55-b8a1-0f7e2ea7a0b1","subject":"'
        + subject.encode()
        + b'","requester_email":"x@y.z"}'
    )
