"""The Distributed Bus scenarios of the reference implementation (Ecotone), in memory.

One module on purpose (a little over 400 lines): it is the catalogue of the
reference's scenarios, read side by side with its list.
"""

from __future__ import annotations

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
    ServiceSpec,
    UnknownServiceError,
)
from toolkit.testing import InMemorySystem


class RegisterUser(msgspec.Struct, frozen=True):
    name: str


class UserRegistered(msgspec.Struct, frozen=True):
    user_id: int
    name: str


class UserIdOnly(msgspec.Struct, frozen=True):
    user_id: int


class TicketCreated(msgspec.Struct, frozen=True):
    ticket_id: int


#: the services the tests send as (a bus for a service the map does not know is refused)
SERVICES = ("admin_service", "billing_service", "ticket_service", "user_service")


def make_map(*event_routes: EventRoute, command_routes: dict[str, str] | None = None) -> ServiceMap:
    channels: dict[str, set[str]] = {}
    for route in event_routes:
        channels.setdefault(route.channel, set()).add(route.subscriber)
    for service, channel in (command_routes or {}).items():
        channels.setdefault(channel, set()).add(service)
    return ServiceMap(
        channels=[
            ChannelSpec(name, "stream" if len(consumers) > 1 else "queue", tuple(sorted(consumers)))
            for name, consumers in sorted(channels.items())
        ],
        command_routes=command_routes or {},
        event_routes=event_routes,
        services=[ServiceSpec(name) for name in SERVICES],
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object, Delivery]] = []

    def handler(self, key: str):  # type: ignore[no-untyped-def]
        def handle(message: object, meta: Delivery) -> None:
            self.seen.append((key, message, meta))

        return handle


def dispatcher(service: str, recorder: Recorder, *routes: tuple[str, str, type]) -> Dispatcher:
    return Dispatcher(
        service, [Route(key, kind, cls, recorder.handler(key)) for key, kind, cls in routes]
    )


@pytest.fixture
async def transport() -> InMemoryTransport:
    return InMemoryTransport()


async def test_command_reaches_the_target_service_with_payload_and_metadata() -> None:
    system = InMemorySystem(make_map(command_routes={"user_service": "user_channel"}))
    users = Recorder()
    await system.bind(dispatcher("user_service", users, ("user.register", "command", RegisterUser)))
    message_id = await system.bus("ticket_service").send_command(
        "user_service", "user.register", RegisterUser("Ann"), {"tenant": "acme"}
    )
    stats = await system.run("user_service")
    assert stats.handled == 1
    [(key, message, meta)] = users.seen
    assert (key, message) == ("user.register", RegisterUser("Ann"))
    h = meta.headers
    assert (h.message_id, h.kind, h.source_service, h.target_service) == (
        message_id,
        "command",
        "ticket_service",
        "user_service",
    )
    assert meta.metadata == {"tenant": "acme"}
    assert h.correlation_id == message_id and h.causation_id == ""
    assert h.content_type == "application/json" and h.timestamp_ms > 0
    assert meta.channel == "user_channel" and meta.delivery_count == 1


async def test_sending_to_an_unmapped_service_fails_before_anything_is_sent() -> None:
    system = InMemorySystem(make_map(command_routes={"user_service": "user_channel"}))
    with pytest.raises(UnknownServiceError, match="'billing_service'") as info:
        await system.bus("ticket_service").send_command(
            "billing_service", "bill.me", RegisterUser("x")
        )
    assert "user_service" in str(info.value)
    assert system.transport.channel_names() == []


async def test_an_event_reaches_every_mapped_service() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("ticket_channel", "ticket_service", ("user.registered",)),
            EventRoute("billing_channel", "billing_service", ("user.registered",)),
        )
    )
    tickets, billing = Recorder(), Recorder()
    await system.bind(
        dispatcher("ticket_service", tickets, ("user.registered", "event", UserRegistered))
    )
    await system.bind(
        dispatcher("billing_service", billing, ("user.registered", "event", UserIdOnly))
    )
    result = await system.bus("user_service").publish_event(
        "user.registered", UserRegistered(1, "Ann")
    )
    assert result.channels == ("billing_channel", "ticket_channel")
    await system.run_all()
    assert [m for _, m, _ in tickets.seen] == [UserRegistered(1, "Ann")]
    # A different class for the same key: the consumer reads only what it needs.
    assert [m for _, m, _ in billing.seen] == [UserIdOnly(1)]
    assert tickets.seen[0][2].message_id == billing.seen[0][2].message_id == result.message_id


async def test_an_excluded_publishers_channel_gets_nothing() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute(
                "ticket_channel",
                "ticket_service",
                ("user.*",),
                exclude_publishers=("user_service",),
            ),
            EventRoute("billing_channel", "billing_service", ("user.*",)),
        )
    )
    result = await system.bus("user_service").publish_event(
        "user.registered", UserRegistered(1, "A")
    )
    assert result.channels == ("billing_channel",)
    assert system.messages("ticket_channel") == []
    other = await system.bus("admin_service").publish_event(
        "user.registered", UserRegistered(2, "B")
    )
    assert other.channels == ("billing_channel", "ticket_channel")


async def test_the_publishers_own_channel_is_not_skipped_unless_excluded() -> None:
    system = InMemorySystem(make_map(EventRoute("user_channel", "user_service", ("user.*",))))
    result = await system.bus("user_service").publish_event(
        "user.registered", UserRegistered(1, "A")
    )
    assert result.channels == ("user_channel",)


async def test_include_list_filters_publishers() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute(
                "ticket_channel", "ticket_service", ("*",), include_publishers=("user_service",)
            ),
        )
    )
    assert (
        await system.bus("user_service").publish_event("user.registered", UserRegistered(1, "A"))
    ).routed
    blocked = await system.bus("billing_service").publish_event("billing.paid", TicketCreated(1))
    assert blocked.channels == ()
    assert system.routing_keys("ticket_channel") == ["user.registered"]


async def test_subscription_keys_filter_events() -> None:
    system = InMemorySystem(make_map(EventRoute("ticket_channel", "ticket_service", ("user.*",))))
    bus = system.bus("user_service")
    assert (await bus.publish_event("user.registered", UserRegistered(1, "A"))).channels == (
        "ticket_channel",
    )
    assert (await bus.publish_event("user.billing.changed", UserIdOnly(1))).channels == (
        "ticket_channel",
    )
    missed = await bus.publish_event("ticket.created", TicketCreated(1))
    assert missed.channels == () and not missed.routed
    assert bus.unrouted == {"ticket.created": 1}
    assert system.routing_keys("ticket_channel") == ["user.registered", "user.billing.changed"]


async def test_an_event_is_published_once_when_two_keys_of_one_channel_match() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("ticket_channel", "ticket_service", ("user.*", "user.registered")),
            EventRoute("ticket_channel", "audit_service", ("*.registered",)),
        )
    )
    result = await system.bus("user_service").publish_event(
        "user.registered", UserRegistered(1, "A")
    )
    assert result.channels == ("ticket_channel",)
    assert len(system.messages("ticket_channel")) == 1


async def test_a_command_only_mapping_receives_no_events() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("billing_channel", "billing_service", ("user.*",)),
            command_routes={"ticket_service": "ticket_channel"},
        )
    )
    result = await system.bus("user_service").publish_event(
        "user.registered", UserRegistered(1, "A")
    )
    assert result.channels == ("billing_channel",)
    assert system.messages("ticket_channel") == []


async def test_a_hand_crafted_message_with_only_documented_headers_is_handled() -> None:
    system = InMemorySystem(make_map(command_routes={"user_service": "user_channel"}))
    users = Recorder()
    await system.bind(dispatcher("user_service", users, ("user.register", "command", RegisterUser)))
    system.transport.add_raw(
        "user_channel",
        {
            "message_id": "php-0001",
            "routing_key": "user.register",
            "kind": "command",
            "source_service": "php_shop",
            "target_service": "user_service",
            "body": '{"name": "Zoe"}',
        },
    )
    stats = await system.run("user_service")
    assert stats.handled == 1
    [(_, message, meta)] = users.seen
    assert message == RegisterUser("Zoe")
    assert meta.headers.source_service == "php_shop" and meta.message_id == "php-0001"


async def test_a_command_for_an_undeclared_key_is_rejected_with_the_reason() -> None:
    system = InMemorySystem(make_map(command_routes={"user_service": "user_channel"}))
    users = Recorder()
    await system.bind(dispatcher("user_service", users, ("user.register", "command", RegisterUser)))
    await system.bus("ticket_service").send_command(
        "user_service", "user.delete", RegisterUser("x")
    )
    stats = await system.run("user_service")
    assert (stats.handled, stats.rejected) == (0, 1)
    [dead] = await system.dead_letters("user_channel")
    assert dead.reason == "service 'user_service' declares no command 'user.delete'"
    assert users.seen == []


async def test_a_command_addressed_to_another_service_is_rejected() -> None:
    system = InMemorySystem(make_map(command_routes={"user_service": "user_channel"}))
    users = Recorder()
    await system.bind(dispatcher("user_service", users, ("user.register", "command", RegisterUser)))
    system.transport.add_raw(
        "user_channel",
        {
            "message_id": "m1",
            "routing_key": "user.register",
            "kind": "command",
            "source_service": "x",
            "target_service": "billing_service",
            "body": '{"name": "x"}',
        },
    )
    await system.run("user_service")
    [dead] = await system.dead_letters("user_channel")
    assert (
        dead.reason
        == "command 'user.register' is addressed to service 'billing_service', not to 'user_service'"
    )


async def test_an_event_the_service_does_not_handle_is_acknowledged_and_skipped() -> None:
    system = InMemorySystem(make_map(EventRoute("ticket_channel", "ticket_service", ("user.*",))))
    tickets = Recorder()
    await system.bind(
        dispatcher("ticket_service", tickets, ("user.registered", "event", UserRegistered))
    )
    await system.bus("user_service").publish_event("user.deleted", UserIdOnly(1))
    stats = await system.run("ticket_service")
    assert (stats.skipped, stats.handled, stats.rejected) == (1, 0, 0)
    assert system.transport.pending("ticket_channel", "ticket_service") == []
    assert await system.dead_letters("ticket_channel") == []


async def test_an_undecodable_payload_is_dead_lettered_and_the_consumer_goes_on() -> None:
    system = InMemorySystem(make_map(EventRoute("ticket_channel", "ticket_service", ("user.*",))))
    tickets = Recorder()
    await system.bind(
        dispatcher("ticket_service", tickets, ("user.registered", "event", UserRegistered))
    )
    bus = system.bus("user_service")
    await bus.publish_event_raw("user.registered", b"{not json")
    await bus.publish_event_raw("user.registered", b'{"user_id": "one", "name": "A"}')
    await bus.publish_event("user.registered", UserRegistered(3, "C"))
    stats = await system.run("ticket_service")
    assert (stats.rejected, stats.handled) == (2, 1)
    reasons = [d.reason for d in await system.dead_letters("ticket_channel")]
    assert reasons[0].startswith(
        "cannot decode 'user.registered' as UserRegistered: JSON is malformed"
    )
    assert reasons[1] == (
        "cannot decode 'user.registered' as UserRegistered: Expected `int`, got `str` - at `$.user_id`"
    )


async def test_a_failing_handler_is_dead_lettered_with_its_traceback() -> None:
    system = InMemorySystem(make_map(EventRoute("ticket_channel", "ticket_service", ("user.*",))))

    def explode(message: UserRegistered, meta: Delivery) -> None:
        raise ValueError(f"no room for {message.name}")

    await system.bind(
        Dispatcher("ticket_service", [Route("user.registered", "event", UserRegistered, explode)])
    )
    await system.bus("user_service").publish_event("user.registered", UserRegistered(1, "Ann"))
    stats = await system.run("ticket_service")
    assert stats.failed == 1
    [dead] = await system.dead_letters("ticket_channel")
    assert dead.reason.startswith("handler raised ValueError: no room for Ann\nTraceback")
    assert "in explode" in dead.reason


async def test_a_shared_stream_delivers_every_event_to_each_service() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("user_events", "ticket_service", ("user.*",)),
            EventRoute("user_events", "billing_service", ("user.registered",)),
        )
    )
    tickets, billing = Recorder(), Recorder()
    await system.bind(
        dispatcher("ticket_service", tickets, ("user.registered", "event", UserRegistered))
    )
    await system.bind(
        dispatcher("billing_service", billing, ("user.registered", "event", UserIdOnly))
    )
    bus = system.bus("user_service")
    for i in range(5):
        await bus.publish_event("user.registered", UserRegistered(i, "x"))
    assert len(system.messages("user_events")) == 5
    await system.run_all()
    assert [m.user_id for _, m, _ in tickets.seen] == [0, 1, 2, 3, 4]
    assert [m.user_id for _, m, _ in billing.seen] == [0, 1, 2, 3, 4]


async def test_async_handlers_and_conversation_ids() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("billing_channel", "billing_service", ("ticket.*",)),
            command_routes={"ticket_service": "tickets"},
        )
    )
    ticket_bus = system.bus("ticket_service")
    billing = Recorder()

    async def open_ticket(message: RegisterUser, meta: Delivery) -> None:
        await ticket_bus.publish_event("ticket.created", TicketCreated(7), caused_by=meta)

    await system.bind(
        Dispatcher("ticket_service", [Route("ticket.create", "command", RegisterUser, open_ticket)])
    )
    await system.bind(
        dispatcher("billing_service", billing, ("ticket.created", "event", TicketCreated))
    )
    first = await system.bus("user_service").send_command(
        "ticket_service", "ticket.create", RegisterUser("x")
    )
    await system.run_all()
    [(_, message, meta)] = billing.seen
    assert message == TicketCreated(7)
    assert meta.headers.correlation_id == first
    assert meta.headers.causation_id == first


async def test_the_sync_bus_routes_like_the_async_one() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("ticket_channel", "ticket_service", ("user.*",)),
            command_routes={"user_service": "users"},
        )
    )
    bus = system.sync_bus("admin_service")
    assert bus.publish_event("user.registered", UserRegistered(1, "A")).channels == (
        "ticket_channel",
    )
    message_id = bus.send_command("user_service", "user.register", RegisterUser("B"), {"k": "v"})
    [command] = system.messages("users")
    assert command.headers.message_id == message_id and command.headers.metadata == {"k": "v"}
    with pytest.raises(UnknownServiceError):
        bus.send_command("nobody", "x.y", RegisterUser("C"))
    assert bus.publish_event("nothing.matches", UserIdOnly(1)).channels == ()


async def test_publish_events_sends_each_event_once_per_channel_in_one_batch() -> None:
    system = InMemorySystem(
        make_map(
            EventRoute("ticket_channel", "ticket_service", ("user.*",)),
            EventRoute("billing_channel", "billing_service", ("user.registered",)),
        )
    )
    bus = system.bus("user_service")
    results = await bus.publish_events(
        "user.registered", [UserRegistered(i, "x") for i in range(3)]
    )
    assert [r.channels for r in results] == [("billing_channel", "ticket_channel")] * 3
    assert len({r.message_id for r in results}) == 3
    for channel in ("ticket_channel", "billing_channel"):
        assert [e.headers.message_id for e in system.messages(channel)] == [
            r.message_id for r in results
        ]
    [unrouted] = await bus.publish_events("nothing.here", [UserIdOnly(1)])
    assert unrouted.channels == () and bus.unrouted == {"nothing.here": 1}
    assert await bus.publish_events("user.registered", []) == []
