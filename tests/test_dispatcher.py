"""The dispatcher's batch fast path decides exactly what route_for() decides."""

from __future__ import annotations

import asyncio

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import Delivery, Dispatcher, Envelope, Headers, Route


class Body(msgspec.Struct):
    n: int = 0


KEYS = ("a.command", "a.event", "b.event", "unknown")
SERVICES = ("me", "other", "")
CONTENT_TYPES = ("application/json", "application/json; charset=utf-8", "text/plain")


def _dispatcher(handled: list[str]) -> Dispatcher:
    def handle(message: Body, meta: Delivery) -> None:
        handled.append(meta.message_id)

    return Dispatcher(
        "me",
        [
            Route("a.command", "command", Body, handle),
            Route("a.event", "event", Body, handle),
            Route("b.event", "event", Body, handle),
        ],
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KEYS),
            st.sampled_from(("command", "event")),
            st.sampled_from(SERVICES),
            st.sampled_from(CONTENT_TYPES),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_batch_path_decides_as_route_for(
    messages: list[tuple[str, str, str, str]],
) -> None:
    handled: list[str] = []
    dispatcher = _dispatcher(handled)
    deliveries = [
        Delivery(
            Envelope(Headers(f"m{i}", key, kind, "src", 1, target, content_type), b"{}"),  # type: ignore[arg-type]
            "ch",
            str(i),
        )
        for i, (key, kind, target, content_type) in enumerate(messages)
    ]
    result = asyncio.run(dispatcher.dispatch_batch(deliveries))
    expected_handled = []
    expected_rejected = []
    skipped = 0
    for delivery in deliveries:
        decided = dispatcher.route_for(delivery)
        if decided is None:
            skipped += 1
        elif isinstance(decided, str):
            expected_rejected.append((delivery.message_id, decided))
        else:
            expected_handled.append(delivery.message_id)
    assert handled == expected_handled
    assert [(d.message_id, reason) for d, reason in result.rejected] == expected_rejected
    assert result.skipped == skipped
