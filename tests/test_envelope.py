from __future__ import annotations

import pytest

from toolkit import Envelope, Headers, WireError, new_message_id


def make(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "message_id": "m1",
        "routing_key": "user.registered",
        "kind": "event",
        "source_service": "user_service",
        "timestamp_ms": 1700000000000,
    }
    fields.update(overrides)
    return Envelope(Headers(**fields), b'{"a":1}')  # type: ignore[arg-type]


def test_wire_fields_round_trip_with_every_header() -> None:
    env = make(
        kind="command",
        target_service="ticket_service",
        content_type="application/json; charset=utf-8",
        correlation_id="c1",
        causation_id="k1",
        metadata={"tenant": "acme", "ünï": "cødé"},
    )
    fields = env.to_fields()
    assert list(fields) == [
        "message_id",
        "routing_key",
        "kind",
        "source_service",
        "target_service",
        "timestamp",
        "content_type",
        "correlation_id",
        "causation_id",
        "metadata",
        "body",
    ]
    as_bytes = {k.encode(): v.encode() if isinstance(v, str) else v for k, v in fields.items()}
    assert Envelope.from_fields(as_bytes) == env


def test_defaults_are_left_out_on_the_wire_and_restored() -> None:
    env = make(correlation_id="m1")
    fields = env.to_fields()
    assert set(fields) == {
        "message_id",
        "routing_key",
        "kind",
        "source_service",
        "timestamp",
        "body",
    }
    assert Envelope.from_fields(fields) == env


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "empty entry: no fields"),
        ({"body": "{}"}, "missing header field(s): message_id, routing_key, kind, source_service"),
        (
            {
                "message_id": "m",
                "routing_key": "k",
                "kind": "note",
                "source_service": "s",
                "body": "",
            },
            "kind must be 'command' or 'event', not 'note'",
        ),
        (
            {
                "message_id": "m",
                "routing_key": "k",
                "kind": "command",
                "source_service": "s",
                "body": "",
            },
            "a command needs the target_service header",
        ),
        (
            {
                "message_id": "m",
                "routing_key": "k",
                "kind": "event",
                "source_service": "s",
                "timestamp": "now",
                "body": "",
            },
            "timestamp must be integer milliseconds, not 'now'",
        ),
        (
            {
                "message_id": "m",
                "routing_key": "k",
                "kind": "event",
                "source_service": "s",
                "metadata": "[1]",
                "body": "",
            },
            "metadata must be a JSON object of strings",
        ),
        (
            {
                b"message_id": b"\xff",
                b"routing_key": b"k",
                b"kind": b"event",
                b"source_service": b"s",
                b"body": b"",
            },
            "header field is not UTF-8",
        ),
    ],
)
def test_invalid_entries_say_what_is_wrong(fields: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(WireError) as info:
        Envelope.from_fields(fields)
    assert str(info.value).startswith(reason)


def test_message_ids_are_unique_32_hex_digits() -> None:
    ids = {new_message_id() for _ in range(10000)}
    assert len(ids) == 10000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
