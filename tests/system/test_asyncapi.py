"""The AsyncAPI 3.0 document: refs, channels, operations, messages, schemas."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import msgspec
import pytest

from codegen.build import load_system
from codegen.model import SystemModel
from codegen.system.asyncapi import HEADERS_SCHEMA_NAME, build_asyncapi
from codegen.system.flows import system_flows, unrouted_events
from codegen.system.jsonschema import type_schema
from codegen.types import parse_type
from tests.system.conftest import (
    refs_in,
    resolve_ref,
)
from tests.test_cases import CASES

# -- structure -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["example", "edge", "all_types"])
def test_every_ref_resolves(name: str, request: pytest.FixtureRequest) -> None:
    doc = build_asyncapi(request.getfixturevalue(name))
    refs = refs_in(doc)
    assert refs
    for ref in refs:
        resolve_ref(doc, ref)


def test_channels_hold_every_routed_key(example: SystemModel) -> None:
    doc = build_asyncapi(example)
    assert doc["asyncapi"] == "3.0.0"
    channels = doc["channels"]
    assert list(channels) == ["billing_events", "ticket_commands", "user_events"]
    assert {name: sorted(c["messages"]) for name, c in channels.items()} == {
        "billing_events": ["ticket.opened"],
        "ticket_commands": ["ticket.create"],
        "user_events": ["user.billing.changed", "user.registered"],
    }
    assert channels["user_events"]["address"] == "user_events"
    assert channels["user_events"]["x-toolkit-kind"] == "stream"
    assert channels["ticket_commands"]["x-toolkit-commands-for"] == "ticket_service"
    assert channels["user_events"]["x-toolkit-subscriptions"] == [
        {"subscriber": "billing_service", "keys": ["user.billing.changed"]},
        {
            "subscriber": "ticket_service",
            "keys": ["user.*"],
            "include_publishers": ["user_service"],
        },
    ]
    assert channels["billing_events"]["x-toolkit-subscriptions"][0]["exclude_publishers"] == [
        "billing_service"
    ]


def test_operations_send_and_receive(example: SystemModel) -> None:
    ops = build_asyncapi(example)["operations"]
    summary = {
        op_id: (op["action"], op["channel"]["$ref"], [m["$ref"] for m in op["messages"]])
        for op_id, op in ops.items()
    }
    assert summary == {
        "billing_service.on_ticket_opened.billing_events": (
            "receive",
            "#/channels/billing_events",
            ["#/channels/billing_events/messages/ticket.opened"],
        ),
        "billing_service.on_user_billing_changed.user_events": (
            "receive",
            "#/channels/user_events",
            ["#/channels/user_events/messages/user.billing.changed"],
        ),
        "ticket_service.on_ticket_create.ticket_commands": (
            "receive",
            "#/channels/ticket_commands",
            ["#/channels/ticket_commands/messages/ticket.create"],
        ),
        "ticket_service.on_user_billing_changed.user_events": (
            "receive",
            "#/channels/user_events",
            ["#/channels/user_events/messages/user.billing.changed"],
        ),
        "ticket_service.on_user_registered.user_events": (
            "receive",
            "#/channels/user_events",
            ["#/channels/user_events/messages/user.registered"],
        ),
        "ticket_service.publish_ticket_opened.billing_events": (
            "send",
            "#/channels/billing_events",
            ["#/channels/billing_events/messages/ticket.opened"],
        ),
        "user_service.publish_user_billing_changed.user_events": (
            "send",
            "#/channels/user_events",
            ["#/channels/user_events/messages/user.billing.changed"],
        ),
        "user_service.publish_user_registered.user_events": (
            "send",
            "#/channels/user_events",
            ["#/channels/user_events/messages/user.registered"],
        ),
        "user_service.send_ticket_create.ticket_commands": (
            "send",
            "#/channels/ticket_commands",
            ["#/channels/ticket_commands/messages/ticket.create"],
        ),
    }
    view_op = ops["billing_service.on_user_billing_changed.user_events"]
    assert view_op["x-toolkit-view"] == {
        "$ref": "#/components/schemas/billing_service.InvoiceAccountUpdate"
    }
    assert "x-toolkit-view" not in ops["ticket_service.on_ticket_create.ticket_commands"]


def test_messages_headers_and_payloads(example: SystemModel) -> None:
    doc = build_asyncapi(example)
    messages = doc["components"]["messages"]
    assert sorted(messages) == sorted(m.routing_key for m in example.messages)
    create = messages["ticket.create"]
    assert create["payload"] == {"$ref": "#/components/schemas/ticket_service.CreateTicket"}
    assert create["contentType"] == "application/json"
    assert create["x-toolkit-kind"] == "command"
    overlay = create["headers"]["allOf"][1]
    assert overlay["properties"]["target_service"] == {"const": "ticket_service"}
    assert overlay["required"] == ["target_service"]
    event_overlay = messages["user.registered"]["headers"]["allOf"][1]
    assert event_overlay["properties"]["kind"] == {"const": "event"}
    assert "required" not in event_overlay
    headers = doc["components"]["schemas"][HEADERS_SCHEMA_NAME]
    assert list(headers["properties"]) == [
        "message_id",
        "routing_key",
        "kind",
        "source_service",
        "target_service",
        "timestamp",
        "deliver_at",
        "priority",
        "content_type",
        "correlation_id",
        "causation_id",
        "metadata",
        "traceparent",
        "tracestate",
    ]
    assert headers["properties"]["priority"]["pattern"] == "^[0-9]$"
    assert headers["required"] == ["message_id", "routing_key", "kind", "source_service"]


def test_schemas_for_contracts_views_and_named_types(example: SystemModel) -> None:
    schemas = build_asyncapi(example)["components"]["schemas"]
    assert list(schemas) == sorted(schemas)
    expected = {HEADERS_SCHEMA_NAME} | {
        f"{svc.name}.{name}"
        for svc in example.services
        for name in [e.class_name for e in svc.enums] + [s.class_name for s in svc.structs]
    }
    assert set(schemas) == expected
    registered = schemas["user_service.UserRegistered"]
    assert registered["required"] == ["user_id", "email", "full_name", "registered_at"]
    props = registered["properties"]
    assert props["user_id"] == {"type": "string", "format": "uuid"}
    assert props["registered_at"] == {"type": "string", "format": "date-time"}
    assert props["plan"] == {
        "allOf": [{"$ref": "#/components/schemas/user_service.Plan"}],
        "default": "free",
    }
    assert props["referrer"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "Who invited the user, if anyone.",
        "default": None,
    }
    assert schemas["user_service.Plan"]["enum"] == ["free", "pro", "enterprise"]
    changed = schemas["user_service.UserBillingChanged"]["properties"]
    assert changed["monthly_price"] == {"type": "string", "format": "decimal"}
    assert changed["vat_ids"] == {"type": "array", "items": {"type": "string"}, "default": []}
    # A view is keyed by wire names and remembers the Python name.
    view = schemas["billing_service.InvoiceAccountUpdate"]
    assert view["x-toolkit-role"] == "view"
    assert list(view["properties"]) == ["user_id", "monthly_price", "billing_address"]
    # renamed and without a default: still required
    assert view["required"] == ["user_id", "monthly_price", "billing_address"]
    assert "default" not in view["properties"]["user_id"]
    assert view["properties"]["user_id"]["x-python-name"] == "account_id"
    assert view["properties"]["billing_address"] == {
        "$ref": "#/components/schemas/billing_service.BillingAddress"
    }
    assert schemas["ticket_service.CustomerPlanChanged"]["properties"]["plan"] == {
        "type": "string",
        "enum": ["free", "pro", "enterprise"],
    }
    assert schemas["ticket_service.NewCustomer"]["properties"]["language"]["default"] == "en"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("str", {"type": "string"}),
        ("int", {"type": "integer"}),
        ("float", {"type": "number"}),
        ("bool", {"type": "boolean"}),
        ("bytes", {"type": "string", "contentEncoding": "base64"}),
        ("datetime", {"type": "string", "format": "date-time"}),
        ("date", {"type": "string", "format": "date"}),
        ("time", {"type": "string", "format": "time"}),
        ("uuid", {"type": "string", "format": "uuid"}),
        ("decimal", {"type": "string", "format": "decimal"}),
        ("list[int]", {"type": "array", "items": {"type": "integer"}}),
        (
            "dict[str, optional[int]]",
            {
                "type": "object",
                "additionalProperties": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            },
        ),
        ("literal[a, b]", {"type": "string", "enum": ["a", "b"]}),
        ("literal[1, 2]", {"type": "integer", "enum": [1, 2]}),
        ('literal[1, "x"]', {"enum": [1, "x"]}),
        ("Thing", {"$ref": "#/components/schemas/svc.Thing"}),
    ],
)
def test_type_schema(text: str, expected: dict[str, Any]) -> None:
    assert type_schema(parse_type(text), "svc") == expected


@pytest.mark.parametrize(
    "pytype",
    [str, int, float, bool, bytes, datetime.date, uuid.UUID, decimal.Decimal],
)
def test_scalar_schemas_agree_with_msgspec(pytype: type) -> None:
    name = {
        datetime.date: "date",
        uuid.UUID: "uuid",
        decimal.Decimal: "decimal",
    }.get(pytype, pytype.__name__)
    assert type_schema(parse_type(name), "svc") == msgspec.json.schema(pytype)


def test_edge_cases(edge: SystemModel) -> None:
    doc = build_asyncapi(edge)
    assert unrouted_events(edge) == ("order.audited",)
    assert (
        "publishing it sends nothing"
        in doc["components"]["messages"]["order.audited"]["description"]
    )
    assert doc["channels"]["orders:commands"]["messages"] == {
        "order.place": {"$ref": "#/components/messages/order.place"}
    }
    assert doc["channels"]["audit_in"]["messages"] == {}
    send = doc["operations"]["shop.send_order_place.orders:commands"]
    assert send["action"] == "send"
    assert send["x-toolkit-view"] == {"$ref": "#/components/schemas/shop.PlaceIt"}
    assert "writes it as its own view PlaceIt" in send["summary"]
    note = doc["components"]["schemas"]["orders.PlaceOrder"]["properties"]["note"]
    assert note == {"type": "string", "description": "Free text.", "default": ""}
    raw = doc["components"]["schemas"]["orders.PlaceOrder"]["properties"]["raw"]
    assert raw["default"] == "aGk="  # b"hi" as msgspec writes it
    # every flow's channel exists and lists the flow's key
    for flow in system_flows(edge):
        assert flow.routing_key in doc["channels"][flow.channel]["messages"]


@pytest.mark.parametrize("case", ["priorities", "deduplicate"])
def test_priorities_and_deduplication_windows_are_described(case: str) -> None:
    system = load_system(CASES / case / "schemas")
    doc = build_asyncapi(system)
    priorities = {
        key: m.get("x-toolkit-priority") for key, m in doc["components"]["messages"].items()
    }
    windows = {
        name: op["x-toolkit-deduplicate-seconds"]
        for name, op in doc["operations"].items()
        if "x-toolkit-deduplicate-seconds" in op
    }
    if case == "priorities":
        assert priorities == {"desk.note": None, "desk.page": 9, "desk.paged": 3}
        assert windows == {}
    else:
        assert set(priorities.values()) == {None}
        assert windows == {
            "desk.on_desk_charge.desk_commands": 86400.0,
            "desk.on_desk_charged.desk_events": 90.0,
        }
