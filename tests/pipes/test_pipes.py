"""Pipes: each channel's sends, subscriptions and dead letters go to the pipe bound to it."""

from __future__ import annotations

import sys
import threading

import pytest

from tests.channels.suite.helpers import envelope
from toolkit import InMemoryTransport
from toolkit.pipe_settings import BindingError, Bindings, PipeSettings
from toolkit.pipes import Pipes, SyncPipes, open_transport


def two_brokers() -> tuple[Pipes, InMemoryTransport, InMemoryTransport]:
    a, b = InMemoryTransport(), InMemoryTransport()
    bindings = Bindings(
        pipes={"default": "memory://a", "other": "memory://b"}, channels={"moved": "other"}
    )
    return Pipes(bindings, transports={"default": a, "other": b}), a, b


async def test_each_channel_travels_on_its_own_pipe() -> None:
    pipes, a, b = two_brokers()
    await pipes.send("stays", [envelope(message_id="1")])
    await pipes.send("moved", [envelope(message_id="2")])
    assert [e.headers.message_id for e in a.messages("stays")] == ["1"]
    assert [e.headers.message_id for e in b.messages("moved")] == ["2"]
    assert a.channel_names() == ["stays"] and b.channel_names() == ["moved"]
    sub = await pipes.subscribe("moved", "group", "c1")
    [got] = await sub.receive(10, 0.1)
    await sub.reject(got, "no")
    assert [d.reason for d in await pipes.dead_letters("moved")] == ["no"]
    assert await b.dead_letters("moved") and not await a.dead_letters("moved")
    await pipes.close()


async def test_pipes_are_opened_on_first_use_and_closed_with_it() -> None:
    bindings = Bindings(pipes={"default": "memory://first-use", "pg": "postgresql://nowhere/x"})
    pipes = Pipes(bindings)
    await pipes.send("c", [envelope()])  # the PostgreSQL pipe is never touched
    assert set(pipes._open) == {"default"}
    await pipes.check(["c"])
    await pipes.close()
    assert pipes._open == {}


async def test_a_pipe_without_its_library_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aio_pika", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "toolkit.channels.rabbitmq.pipe", raising=False)
    monkeypatch.delitem(sys.modules, "toolkit.channels.rabbitmq.transport", raising=False)
    with pytest.raises(BindingError, match=r'pip install "smart-endpoints\[rabbitmq\]"'):
        open_transport("amqp://guest:secret@localhost/")


async def test_dead_letters_of_a_pipe_without_a_store_are_a_clear_error() -> None:
    class Bare:
        async def send(self, channel: str, envelopes: object) -> None: ...
        async def subscribe(self, channel: str, group: str, consumer: str) -> None: ...
        async def close(self) -> None: ...

    bindings = Bindings(
        pipes={"default": "memory://x", "bare": "amqp://u:pw@h/"}, channels={"c": "bare"}
    )
    pipes = Pipes(bindings, transports={"bare": Bare()})  # type: ignore[dict-item]
    with pytest.raises(BindingError, match=r"'c' is on pipe 'bare' \(amqp://u:\*\*\*@h/\)"):
        await pipes.dead_letters("c")


async def test_the_generated_publishers_and_the_consumer_work_over_pipes() -> None:
    import uuid

    from generated.ticket_service import CreateTicket, bind
    from generated.user_service import UserServicePublisher
    from tests.redis.apps import Memory
    from toolkit import Consumer

    pipes, a, b = two_brokers()
    pipes.bindings.channels["ticket_commands"] = "other"
    publisher = UserServicePublisher(pipes)
    await publisher.send_ticket_create(
        CreateTicket(ticket_id=uuid.uuid4(), subject="s", requester_email="a@b.c")
    )
    assert len(b.messages("ticket_commands")) == 1 and a.channel_names() == []
    handlers = Memory()
    stats = await Consumer(pipes, "ticket_commands", bind(handlers)).run(until_empty=True)
    assert stats.handled == 1 and len(handlers.messages) == 1
    await pipes.close()


def test_sync_pipes_send_from_threads_through_the_event_loop_thread() -> None:
    memory = InMemoryTransport()
    pipes = SyncPipes(Bindings(pipes={"default": "memory://sync-threads"}))
    pipes._pipes._open["default"] = memory  # a broker this test can look into
    threads = [
        threading.Thread(target=pipes.send_sync, args=("c", [envelope(message_id=str(i))]))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.headers.message_id for e in memory.messages("c")) == [str(i) for i in range(8)]
    pipes.close()


def test_sync_pipes_use_a_pipes_own_synchronous_transport(redis_url: str, prefix: str) -> None:
    import redis

    pipes = SyncPipes(Bindings(pipes={"default": redis_url}), PipeSettings(prefix=prefix))
    pipes.send_sync("c", [envelope(message_id="m1")])
    assert pipes._loop is None  # Redis has a synchronous client: no loop thread was needed
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(f"{prefix}:{{c}}") == 1
    client.close()
    pipes.close()
