"""toolkit.testing and the pytest plugin's fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from toolkit import (
    ChannelSpec,
    Delivery,
    Dispatcher,
    EventRoute,
    InMemoryTransport,
    Route,
    ServiceMap,
)
from toolkit.testing import InMemorySystem, assert_no_drift

ROOT = Path(__file__).resolve().parent.parent


class Ping(msgspec.Struct):
    n: int


MAP = ServiceMap(
    channels=[ChannelSpec("pings", "queue", ("pong_service",))],
    command_routes={},
    event_routes=[EventRoute("pings", "pong_service", ("ping",))],
    events={"ping": "ping_service"},
)


async def bind_pong(system: InMemorySystem) -> list[int]:
    """Bind pong_service, which records the number of every ping it handles."""
    seen: list[int] = []
    await system.bind(
        Dispatcher("pong_service", [Route("ping", "event", Ping, lambda m, d: seen.append(m.n))])
    )
    return seen


async def test_run_consumes_at_most_limit_messages(make_system) -> None:  # type: ignore[no-untyped-def]
    system: InMemorySystem = make_system(MAP)
    seen = await bind_pong(system)
    bus = system.bus("ping_service")
    for i in range(5):
        await bus.publish_event("ping", Ping(i))
    assert (await system.run("pong_service", limit=2)).handled == 2
    assert seen == [0, 1]
    assert (await system.run("pong_service")).handled == 3
    assert seen == [0, 1, 2, 3, 4]
    assert system.routing_keys("pings") == ["ping"] * 5


async def test_run_all_follows_handlers_that_send_more(make_system) -> None:  # type: ignore[no-untyped-def]
    system: InMemorySystem = make_system(MAP)
    bus = system.bus("pong_service")
    seen: list[int] = []

    async def again(message: Ping, meta: Delivery) -> None:
        seen.append(message.n)
        if message.n < 3:
            await bus.publish_event("ping", Ping(message.n + 1), caused_by=meta)

    await system.bind(Dispatcher("pong_service", [Route("ping", "event", Ping, again)]))
    await system.bus("ping_service").publish_event("ping", Ping(0))
    stats = await system.run_all()
    assert seen == [0, 1, 2, 3] and stats.handled == 4


async def test_run_all_stops_a_handler_loop(make_system) -> None:  # type: ignore[no-untyped-def]
    system: InMemorySystem = make_system(MAP)
    bus = system.bus("pong_service")

    async def forever(message: Ping, meta: Delivery) -> None:
        await bus.publish_event("ping", message)

    await system.bind(Dispatcher("pong_service", [Route("ping", "event", Ping, forever)]))
    await bus.publish_event("ping", Ping(0))
    with pytest.raises(RuntimeError, match="a handler loop"):
        await system.run_all(max_rounds=5)


async def test_a_message_redis_would_dead_letter_is_dead_lettered_in_memory_too() -> None:
    system = InMemorySystem(MAP)
    seen = await bind_pong(system)
    bus = system.bus("ping_service")
    await bus.publish_event("ping", Ping(1), metadata={"n": 1})  # type: ignore[dict-item]
    await bus.publish_event("ping", Ping(2), metadata={"n": "1"})
    await system.run("pong_service")
    assert seen == [2]
    [dead] = await system.dead_letters("pings")
    assert dead.reason.startswith("invalid envelope: metadata must be a JSON object of strings")
    await system.close()


async def test_a_long_run_keeps_a_bounded_history_for_inspection() -> None:
    system = InMemorySystem(MAP, InMemoryTransport(history=50))
    seen = await bind_pong(system)
    bus = system.bus("ping_service")
    for i in range(5_000):
        await bus.publish_event("ping", Ping(i))
        if i % 500 == 499:
            await system.run("pong_service")
    assert seen == list(range(5_000))
    kept = system.messages("pings")
    assert 50 <= len(kept) <= 50 + 1024 + 500
    assert [msgspec.json.decode(e.body, type=Ping).n for e in kept] == list(
        range(5_000 - len(kept), 5_000)
    )
    assert system.routing_keys("pings") == ["ping"] * len(kept)
    await system.close()


def test_memory_transport_fixture(memory_transport: InMemoryTransport) -> None:
    assert memory_transport.channel_names() == []


def test_unknown_consumer_is_a_clear_error() -> None:
    system = InMemorySystem(MAP)
    with pytest.raises(KeyError, match="'pong_service' is not bound"):
        system.consumer("pong_service", "pings")


def test_assert_no_drift_passes_on_the_repository(toolkit_drift) -> None:  # type: ignore[no-untyped-def]
    toolkit_drift()


def test_assert_no_drift_fails_with_a_diff(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    shutil.copytree(ROOT / "generated", tmp_path / "generated")
    target = tmp_path / "generated" / "user_service" / "messages.py"
    target.write_text(target.read_text().replace("email: str", "email: bytes"))
    with pytest.raises(AssertionError) as info:
        assert_no_drift(tmp_path / "schemas", tmp_path / "generated")
    assert "stale: user_service/messages.py" in str(info.value)
    assert "+    email: str" in str(info.value)


def test_assert_no_drift_lists_schema_errors(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "tests" / "cases" / "err_keys" / "schemas", tmp_path / "schemas")
    with pytest.raises(AssertionError, match=r"routing key .a\.\.do. is not valid"):
        assert_no_drift(tmp_path / "schemas", tmp_path / "generated")
