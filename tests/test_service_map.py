from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit import (
    ChannelSpec,
    DistributedBus,
    EventRoute,
    InMemoryTransport,
    ServiceMap,
    ServiceSpec,
    UnknownServiceError,
)
from toolkit.service_map import KeyPattern
from toolkit.testing import InMemorySystem


def test_star_spans_dots_and_needs_at_least_one_character() -> None:
    p = KeyPattern("user.*")
    assert p.matches("user.registered")
    assert p.matches("user.billing.changed")
    assert not p.matches("user.")
    assert not p.matches("user")
    assert not p.matches("ticket.created")


def test_patterns_without_star_match_only_themselves() -> None:
    assert KeyPattern("user.registered").matches("user.registered")
    assert not KeyPattern("user.registered").matches("user.registered.v2")


def test_star_in_the_middle_and_at_the_start() -> None:
    assert KeyPattern("*.created").matches("ticket.created")
    assert KeyPattern("user.*.changed").matches("user.billing.changed")
    assert KeyPattern("user.*.changed").matches("user.a.b.changed")
    assert not KeyPattern("user.*.changed").matches("user..changed")
    assert KeyPattern("*").matches("anything.at.all")


segment = st.text(alphabet="ab.", min_size=0, max_size=6)


@given(
    st.lists(st.one_of(segment, st.just("*")), min_size=1, max_size=5),
    st.text(alphabet="ab.", max_size=12),
)
def test_matching_agrees_with_the_documented_regex(parts: list[str], key: str) -> None:
    pattern = "".join(parts)
    reference = re.fullmatch(
        "".join(".+" if c == "*" else re.escape(c) for c in pattern), key, re.DOTALL
    )
    assert KeyPattern(pattern).matches(key) == (reference is not None)


def test_event_routing_is_cached_per_key_and_publisher() -> None:
    service_map = ServiceMap(
        channels=[ChannelSpec("c", "queue", ("s",))],
        command_routes={},
        event_routes=[EventRoute("c", "s", ("user.*",), exclude_publishers=("x",))],
    )
    assert service_map.event_channels("user.a", "y") == ("c",)
    assert service_map.event_channels("user.a", "x") == ()
    assert service_map._event_cache == {("user.a", "y"): ("c",), ("user.a", "x"): ()}
    assert service_map.channels_consumed_by("s") == (ChannelSpec("c", "queue", ("s",)),)


def test_generated_map_equals_itself_and_lists_services() -> None:
    from generated.service_map import SERVICE_MAP

    assert SERVICE_MAP.services == ("billing_service", "ticket_service", "user_service")
    assert SERVICE_MAP.command_channel("ticket_service") == "ticket_commands"
    assert SERVICE_MAP.event_channels("user.registered", "user_service") == ("user_events",)
    assert SERVICE_MAP.event_channels("ticket.opened", "ticket_service") == ("billing_events",)
    assert SERVICE_MAP.event_channels("ticket.opened", "billing_service") == ()


def test_a_bus_sends_only_as_a_service_the_map_knows() -> None:
    from generated.service_map import SERVICE_MAP

    system = InMemorySystem(SERVICE_MAP)
    for make in (system.bus, system.sync_bus):
        with pytest.raises(UnknownServiceError) as caught:
            make("storefront")
        assert str(caught.value) == (
            "no service 'storefront' in the service map: a bus sends as one of its services "
            "(billing_service, ticket_service, user_service)"
        )
    # One that consumes nothing and owns nothing (it only sends commands) is listed too.
    till = ServiceMap(
        channels=[], command_routes={}, event_routes=[], services=[ServiceSpec("till")]
    )
    assert DistributedBus("till", till, InMemoryTransport()).service == "till"
    assert till.services == ("till",)
