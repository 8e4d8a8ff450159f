"""`toolkit docs`: the Mermaid diagram of the service map and the Markdown page around it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from codegen.build import load_system
from codegen.model import SystemModel
from codegen.system.mermaid import node_ids, service_map_markdown, service_map_mermaid
from tests.system.conftest import DOCS, EDGE_SCHEMAS, ROOT, SCHEMAS, write_schemas

_EDGE = re.compile(r"^    (\S+) (-->|==>|-\.->)\|\"([^\"]*)\"\| (\S+)$")
_NODE = re.compile(r"^    (\w+)(\[\(?\"|\(\(\")")


@pytest.fixture(scope="module")
def example() -> SystemModel:
    return load_system(SCHEMAS)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> SystemModel:
    return load_system(write_schemas(tmp_path_factory.mktemp("edge") / "schemas", EDGE_SCHEMAS))


def _edges(diagram: str) -> list[tuple[str, str, list[str], str]]:
    found = []
    for line in diagram.splitlines():
        match = _EDGE.match(line)
        if match:
            source, arrow, label, target = match.groups()
            found.append((source, arrow, label.split("<br/>"), target))
    return found


def _nodes(diagram: str) -> list[str]:
    return [m.group(1) for line in diagram.splitlines() if (m := _NODE.match(line))]


def test_example_diagram(example: SystemModel) -> None:
    diagram = service_map_mermaid(example)
    lines = diagram.splitlines()
    assert lines[0] == "flowchart LR"
    assert diagram.endswith("\n")
    assert _nodes(diagram) == [
        "svc_billing_service",
        "svc_ticket_service",
        "svc_user_service",
        "ch_billing_events",
        "ch_ticket_commands",
        "ch_user_events",
    ]
    assert '    ch_user_events[("user_events<br/>stream")]:::stream' in lines
    assert '    ch_ticket_commands[("ticket_commands<br/>queue")]:::queue' in lines
    assert _edges(diagram) == [
        ("svc_ticket_service", "-->", ["publish", "ticket.opened"], "ch_billing_events"),
        ("svc_user_service", "==>", ["send", "ticket.create"], "ch_ticket_commands"),
        (
            "svc_user_service",
            "-->",
            ["publish", "user.billing.changed", "user.registered"],
            "ch_user_events",
        ),
        ("ch_ticket_commands", "==>", ["commands", "ticket.create"], "svc_ticket_service"),
        (
            "ch_billing_events",
            "-->",
            ["subscribe", "ticket.*", "not from: billing_service"],
            "svc_billing_service",
        ),
        ("ch_user_events", "-->", ["subscribe", "user.billing.changed"], "svc_billing_service"),
        (
            "ch_user_events",
            "-->",
            ["subscribe", "user.*", "only from: user_service"],
            "svc_ticket_service",
        ),
    ]
    assert "nobody" not in diagram


def test_every_service_channel_and_key_is_drawn(example: SystemModel, edge: SystemModel) -> None:
    for system in (example, edge):
        diagram = service_map_mermaid(system)
        labels = {part for _, _, label, _ in _edges(diagram) for part in label}
        nodes = set(_nodes(diagram))
        for svc in system.services:
            assert f'["{svc.name}"]' in diagram
        for channel in system.channels:
            assert f'[("{channel.name}<br/>{channel.kind}")]' in diagram
        for message in system.messages:
            assert message.routing_key in labels
        for route in system.event_routes:
            assert set(route.keys) <= labels
        for source, _, _, target in _edges(diagram):
            assert source in nodes | {"nobody"} and target in nodes | {"nobody"}


def test_edge_cases_drawn(edge: SystemModel) -> None:
    diagram = service_map_mermaid(edge)
    edges = _edges(diagram)
    # ':' is not allowed in a node id; "orders:commands" and "orders_commands" stay apart.
    assert "ch_orders_commands" in _nodes(diagram) and "ch_orders_commands_2" in _nodes(diagram)
    assert (
        "ch_audit_in",
        "-->",
        ["subscribe", "order.*", "only from: shop"],
        "svc_audit",
    ) in edges
    assert (
        "ch_orders_commands_2",
        "-->",
        ["subscribe", "order.placed", "not from: shop"],
        "svc_shop",
    ) in edges
    assert ("svc_shop", "==>", ["send", "order.place"], "ch_orders_commands") in edges
    # an event nobody subscribes to goes to the "no subscriber" node
    assert '    nobody(("no subscriber")):::nobody' in diagram.splitlines()
    assert ("svc_orders", "-.->", ["publish", "order.audited"], "nobody") in edges


def test_node_ids() -> None:
    assert node_ids("ch_", ["a.b", "a_b", "a:b", "end"]) == {
        "a.b": "ch_a_b",
        "a:b": "ch_a_b_2",
        "a_b": "ch_a_b_3",
        "end": "ch_end",
    }


def test_deterministic(
    example: SystemModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = service_map_mermaid(example)
    assert first == service_map_mermaid(load_system(SCHEMAS))
    copy = shutil.copytree(SCHEMAS, tmp_path / "copy")
    monkeypatch.chdir(tmp_path)
    again = load_system(copy)
    assert service_map_mermaid(again) == first
    assert service_map_markdown(again) == service_map_markdown(example)


def test_markdown_embeds_the_diagram(example: SystemModel) -> None:
    diagram = service_map_mermaid(example)
    page = service_map_markdown(example, diagram)
    assert f"```mermaid\n{diagram}```\n" in page
    assert "| `user_events` | stream | `billing_service`, `ticket_service` |" in page
    assert "| `user_events` | ticket_service | `user.*` | only from: user_service |" in page
    assert "| `billing_events` | billing_service | `ticket.*` | not from: billing_service |" in page
    assert (
        "| `user.registered` | event | user_service | UserRegistered | `user_events` "
        "| user_service | ticket_service (NewCustomer) |" in page
    )


def test_committed_diagram_matches(example: SystemModel) -> None:
    diagram = service_map_mermaid(example)
    assert (DOCS / "service-map.mmd").read_text(encoding="utf-8") == diagram
    page = (DOCS / "service-map.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{diagram}```" in page
    # docs/system.md shows the real diagram too.
    guide = (ROOT / "docs" / "system.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{diagram}```" in guide
