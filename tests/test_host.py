"""The service host and the application object, in memory: no server needed.

The same App runs in ``InMemorySystem`` and in ``ServiceHost`` (what
``toolkit run SERVICE`` serves); the host consumes every channel of its
service in one process with the runner's limits; health probes follow the
host's life. Redis and child processes: ``tests/redis/test_host.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from generated.billing_service import TicketForBilling
from generated.billing_service import bind as bind_billing
from generated.service_map import SERVICE_MAP
from generated.ticket_service import CreateTicket, TicketOpened, TicketServicePublisher
from generated.ticket_service import bind as bind_tickets
from tests.cli import ROOT
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create, user_registered
from tests.test_generated import _mypy
from toolkit import (
    App,
    Delivery,
    Dispatcher,
    HealthOptions,
    HostContext,
    InMemoryTransport,
    RunOptions,
    ServiceHost,
)
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main
from toolkit.commands._app import AppError, app_for, load_app
from toolkit.commands.run import which_service
from toolkit.host import HostError, describe_transport
from toolkit.routing import ChannelSpec, EventRoute
from toolkit.service_map import ServiceMap
from toolkit.testing import InMemorySystem


class Tickets:
    """ticket_service: opens a ticket per command, through the publisher the host gives."""

    def __init__(self, publisher: TicketServicePublisher, events: list[str]) -> None:
        self.publisher = publisher
        self.events = events

    async def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:
        self.events.append(f"ticket {message.subject}")
        opened = TicketOpened(ticket_id=message.ticket_id, subject=message.subject, priority="low")
        await self.publisher.publish_ticket_opened(opened, caused_by=meta)

    def on_user_registered(self, message: Any, meta: Delivery) -> None:
        self.events.append("user")

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None:
        self.events.append("billing change")


def ticket_app(events: list[str]) -> App[TicketServicePublisher]:
    @contextlib.asynccontextmanager
    async def handlers(ctx: HostContext[TicketServicePublisher]) -> AsyncIterator[Dispatcher]:
        events.append(f"startup {ctx.service}")
        try:
            yield bind_tickets(Tickets(ctx.publisher, events))
        finally:
            events.append(f"shutdown {ctx.service}")

    return App("ticket_service", TicketServicePublisher, handlers)


class Billing:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def on_ticket_opened(self, message: TicketForBilling, meta: Delivery) -> None:
        self.events.append(f"billing saw {meta.headers.source_service}")

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None:
        pass


async def test_an_app_runs_in_memory_with_its_publisher_startup_and_shutdown() -> None:
    events: list[str] = []
    billing = App("billing_service", None, lambda ctx: bind_billing(Billing(events)))
    system = InMemorySystem(SERVICE_MAP)
    ctx = await system.start(ticket_app(events))
    assert isinstance(ctx.publisher, TicketServicePublisher) and ctx.transport is system.transport
    assert ctx.log.name == "ticket_service"
    assert (await system.start(billing)).publisher is None
    command = CreateTicket(ticket_id=uuid.uuid4(), subject="hi", requester_email="a@b.c")
    await system.bus("user_service").send_command("ticket_service", "ticket.create", command)
    await system.run_all()
    assert events == ["startup ticket_service", "ticket hi", "billing saw ticket_service"]
    await system.close()
    assert events[-1] == "shutdown ticket_service"


async def test_an_app_that_returns_something_else_is_refused() -> None:
    system = InMemorySystem(SERVICE_MAP)
    with pytest.raises(AppError, match="return the Dispatcher of the generated bind"):
        await system.start(App("billing_service", None, lambda ctx: Billing([])))  # type: ignore[arg-type]
    with pytest.raises(AppError, match="returned the dispatcher of 'billing_service'"):
        await system.start(App("ticket_service", None, lambda ctx: bind_billing(Billing([]))))
    with pytest.raises(AppError, match="the service map has no such service"):
        await system.start(App("nobody", None, lambda ctx: bind_billing(Billing([]))))
    await system.close()


async def test_one_host_consumes_every_channel_of_its_service() -> None:
    transport = InMemoryTransport()
    await transport.send("ticket_commands", [ticket_create(i) for i in range(3)])
    await transport.send("user_events", [user_registered(i) for i in range(4)])
    events: list[str] = []
    options = RunOptions(until_empty=True, block_timeout=0.05)
    host = ServiceHost(transport, ticket_app(events), SERVICE_MAP, options, consumer_name="h1")
    assert host.channels == ("ticket_commands", "user_events")
    stats = await host.run()
    assert (host.reason, stats.handled) == ("empty", 7)
    assert events.count("user") == 4 and events[0] == "startup ticket_service"
    assert events[-1] == "shutdown ticket_service"
    # Its events went out through the same transport.
    assert len(transport.messages("billing_events")) == 3
    assert "h1" in host.summary() and "ticket_commands, user_events" in host.summary()


async def test_a_host_consumes_only_the_channels_named() -> None:
    transport = InMemoryTransport()
    await transport.send("ticket_commands", [ticket_create(0)])
    await transport.send("user_events", [user_registered(0)])
    handlers = Memory()
    options = RunOptions(until_empty=True, block_timeout=0.05)
    host = ServiceHost(
        transport, bind_tickets(handlers), SERVICE_MAP, options, channels=["user_events"]
    )
    await host.run()
    assert [d.channel for d in handlers.deliveries] == ["user_events"]
    with pytest.raises(HostError, match="does not consume 'billing_events'"):
        ServiceHost(transport, bind_tickets(handlers), SERVICE_MAP, channels=["billing_events"])


async def test_the_limit_is_the_processes_and_a_failure_on_one_channel_stops_all() -> None:
    transport = InMemoryTransport()
    await transport.send("ticket_commands", [ticket_create(i) for i in range(50)])
    await transport.send("user_events", [user_registered(i) for i in range(50)])
    options = RunOptions(limit=10, batch_size=3, block_timeout=0.05)
    host = ServiceHost(transport, bind_tickets(Memory()), SERVICE_MAP, options)
    stats = await host.run()
    # One batch per other channel may be in hand when the limit is reached.
    assert host.reason == "limit" and 10 <= stats.processed <= 10 + 3

    def fail_on_users(message: Any, meta: Delivery) -> None:
        if meta.routing_key == "user.registered":
            raise RuntimeError("boom")

    options = RunOptions(stop_on_failure=True, batch_size=5, block_timeout=0.05)
    host = ServiceHost(transport, bind_tickets(Memory(fail_on_users)), SERVICE_MAP, options)
    # Without the stop, the ticket_commands consumer would wait for more for ever.
    stats = await asyncio.wait_for(host.run(), 10)
    assert host.reason == "failure" and stats.retried >= 1


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_readiness_waits_for_startup_and_subscriptions_liveness_for_the_loop(
    tmp_path: Any,
) -> None:
    release = asyncio.Event()
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def slow(ctx: HostContext[TicketServicePublisher]) -> AsyncIterator[Dispatcher]:
        await release.wait()  # a database pool that takes its time
        yield bind_tickets(Tickets(ctx.publisher, events))
        events.append("shutdown")

    health = HealthOptions(port=0, host="127.0.0.1", file=str(tmp_path / "health"), interval=0.05)
    host = ServiceHost(
        InMemoryTransport(),
        App("ticket_service", TicketServicePublisher, slow),
        SERVICE_MAP,
        RunOptions(block_timeout=0.05),
        health=health,
    )
    said: list[str] = []
    task = asyncio.create_task(host.run(announce=said.append))
    while host.health.port is None:
        await asyncio.sleep(0.01)
    port = host.health.port
    assert said == [host.summary()] and f"http://127.0.0.1:{port}/readyz" in said[0]
    assert (await http_get(port, "/livez"))[0] == 200
    status, body = await http_get(port, "/readyz")
    assert status == 503 and "[-]startup failed: the App is starting" in body
    assert (tmp_path / "health").read_text().startswith("not ready: startup")
    release.set()
    for _ in range(100):
        status, body = await http_get(port, "/readyz")
        if status == 200:
            break
        await asyncio.sleep(0.02)
    assert status == 200 and "[+]subscribed ok" in body and body.endswith("readyz check passed\n")
    await asyncio.sleep(0.2)
    assert (tmp_path / "health").read_text() == "ready\n"
    assert (await http_get(port, "/nope"))[0] == 404
    host.stop()
    await asyncio.wait_for(task, 5)
    assert host.reason == "stopped" and events == ["shutdown"]
    assert not (tmp_path / "health").exists()
    with pytest.raises(OSError):
        await http_get(port, "/livez")


async def test_the_summary_names_the_pipe_without_its_password() -> None:
    transport = RedisTransport("redis://app:s3cret@redis.example:6380/2", prefix="shop")
    host = ServiceHost(transport, bind_tickets(Memory()), SERVICE_MAP, consumer_name="web-1")
    assert host.summary() == (
        "ticket_service: consuming ticket_commands, user_events on "
        "redis://app:***@redis.example:6380/2 (prefix shop), group ticket_service, consumer web-1"
    )
    await transport.close()
    assert describe_transport(InMemoryTransport()) == "InMemoryTransport"


def test_run_tells_a_service_from_a_channel(capsys: pytest.CaptureFixture[str]) -> None:
    app = ["--app", "tests.redis.apps:Memory"]
    assert main(["run", "ticket_commands", *app]) == 2
    assert (
        "'ticket_commands' is a channel; name the service that consumes it: "
        "`toolkit run ticket_service --channel ticket_commands`" in capsys.readouterr().err
    )
    assert main(["run", "ticket_service", "--channel", "billing_events", *app]) == 2
    assert "does not consume 'billing_events'" in capsys.readouterr().err
    assert main(["run", "user_service", *app]) == 2
    assert "'user_service' consumes nothing" in capsys.readouterr().err
    assert main(["run", "nobody", *app]) == 2
    assert "no service or channel 'nobody'" in capsys.readouterr().err
    argv = ["run", "ticket_commands", "--service", "ticket_service", "--channel", "x", *app]
    assert main(argv) == 2
    assert "--channel and --service do not go together" in capsys.readouterr().err
    assert main(["run", "ticket_service", "--service", "ticket_service", *app]) == 2
    assert "'ticket_service' is a service" in capsys.readouterr().err
    assert main(["run", "ticket_service", "--health-port", "70000", *app]) == 2
    assert "health port must be 0-65535" in capsys.readouterr().err


def test_a_name_that_is_a_service_and_a_channel_is_ambiguous() -> None:
    service_map = ServiceMap(
        channels=[ChannelSpec(name="audit", kind="queue", consumers=("audit",))],
        command_routes={"audit": "audit"},
        event_routes=[EventRoute("audit", "audit", ("x.*",), None, None)],
        commands={"audit.note": "audit"},
    )
    with pytest.raises(HostError, match="names both a service and a channel; say which"):
        which_service(service_map, "audit", None, [])
    assert which_service(service_map, "audit", None, ["audit"]) == ("audit", ["audit"])
    assert which_service(service_map, "audit", "audit", []) == ("audit", ["audit"])


def test_app_loading_keeps_the_old_forms_and_explains_the_new_one() -> None:
    assert isinstance(load_app("tests.test_host:LOADABLE"), App)
    assert isinstance(load_app("tests.redis.apps:Memory"), Memory)  # a class: called
    with pytest.raises(AppError, match=r"takes arguments.*give a toolkit\.App"):
        load_app("tests.test_host:Tickets")
    with pytest.raises(AppError, match="gives the App of 'ticket_service', not of 'billing'"):
        app_for(LOADABLE, "billing", "generated")
    assert app_for(LOADABLE, "ticket_service", "generated") is LOADABLE
    assert isinstance(app_for(Memory(), "ticket_service", "generated"), Dispatcher)


LOADABLE = ticket_app([])
#: handlers that return the implementation instead of binding it
BROKEN = App("billing_service", None, lambda ctx: Billing([]))  # type: ignore[arg-type,return-value]


def test_apps_are_type_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, output = _mypy("tests/typing/host_app.py")
    assert code == 0, output
    code, output = _mypy("tests/typing/host_app_wrong.py")
    assert code == 1
    assert 'Argument 1 to "bind" has incompatible type "OnlyTickets"' in output
    assert '"TicketServicePublisher" has no attribute "publish_user_registered"' in output
