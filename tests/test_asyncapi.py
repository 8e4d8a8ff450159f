"""`toolkit docs`: the AsyncAPI 3.0 document, its validity, and the committed copy's drift."""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from codegen.build import load_system
from codegen.model import SystemModel
from codegen.system.asyncapi import HEADERS_SCHEMA_NAME, asyncapi_json, build_asyncapi
from codegen.system.flows import system_flows, unrouted_events
from codegen.system.jsonschema import type_schema
from codegen.types import parse_type
from toolkit.cli import main
from toolkit.commands.docs import docs_files

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
DOCS = ROOT / "docs" / "system"
CASES = ROOT / "tests" / "cases"
VALIDATOR = ROOT / "tests" / "asyncapi"

# A second system with the awkward cases: a sender's own view, a channel name with
# ':', an event nobody subscribes to, a subscription that receives nothing,
# include and exclude filters.
EDGE_SCHEMAS = {
    "orders.toml": """
[service]
name = "orders"
description = "Takes orders."

[channels."orders:commands"]
kind = "queue"
commands = true

[commands."order.place"]
class = "PlaceOrder"
description = "Place an order."
fields.order_id = "uuid"
fields.note = { type = "str", default = "", doc = "Free text." }
fields.raw = { type = "bytes", default = "hi" }

[events."order.placed"]
class = "OrderPlaced"
fields.order_id = "uuid"

[events."order.audited"]
class = "OrderAudited"
fields.at = "datetime"
""",
    "shop.toml": """
[service]
name = "shop"

[channels.orders_commands]
kind = "stream"
subscribe = ["order.placed"]
exclude_publishers = ["shop"]

[sends."order.place"]
service = "orders"
class = "PlaceIt"
fields.order_id = "uuid"

[subscribes."order.placed"]
class = "Placed"
fields.id = { type = "uuid", wire_name = "order_id" }
""",
    "audit.toml": """
[service]
name = "audit"

[channels.audit_in]
kind = "queue"
subscribe = ["order.*"]
include_publishers = ["shop"]
""",
}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def example() -> SystemModel:
    return load_system(SCHEMAS)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> SystemModel:
    return load_system(_write(tmp_path_factory.mktemp("edge") / "schemas", EDGE_SCHEMAS))


@pytest.fixture(scope="module")
def all_types() -> SystemModel:
    return load_system(CASES / "all_types" / "schemas")


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


# -- the committed copy ----------------------------------------------------------------


def test_committed_docs_are_up_to_date(example: SystemModel) -> None:
    files = docs_files(example)
    stale = [
        name
        for name, text in files.items()
        if not (DOCS / name).is_file() or (DOCS / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"docs/system is stale ({', '.join(stale)}): run `toolkit docs`"


def test_docs_check_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "site"
    assert main(["docs", "--out", str(out), "--check"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["docs", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "asyncapi.json",
        "service-map.md",
        "service-map.mmd",
    ]
    assert "created" in capsys.readouterr().out
    assert main(["docs", "--out", str(out), "--check"]) == 0
    (out / "service-map.mmd").write_text("flowchart LR\n", encoding="utf-8")
    assert main(["docs", "--out", str(out), "--check"]) == 1
    captured = capsys.readouterr()
    assert "stale" in captured.err and "+++" in captured.out
    assert main(["docs", "--out", str(out)]) == 0
    assert "updated" in capsys.readouterr().out
    assert main(["docs", "--out", str(out)]) == 0
    assert "no changes" in capsys.readouterr().out


def test_schema_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    code = main(["docs", "--schemas", str(CASES / "err_keys" / "schemas"), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: routing key 'a..do' is not valid" in err
    assert err.rstrip().endswith("errors in schema files")
    assert not out.exists()


def test_output_is_deterministic_and_independent_of_the_folder(
    example: SystemModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert asyncapi_json(example) == asyncapi_json(load_system(SCHEMAS))
    copy = shutil.copytree(SCHEMAS, tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    assert asyncapi_json(load_system(copy)) == asyncapi_json(example)


# -- structure -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["example", "edge", "all_types"])
def test_every_ref_resolves(name: str, request: pytest.FixtureRequest) -> None:
    doc = build_asyncapi(request.getfixturevalue(name))
    refs = _refs(doc)
    assert refs
    for ref in refs:
        _resolve(doc, ref)


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
        "content_type",
        "correlation_id",
        "causation_id",
        "metadata",
    ]
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


# -- payload schemas accept what msgspec writes ----------------------------------------


def _validator(doc: dict[str, Any], name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    root = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft7Validator(
        root, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def _load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_asyncapi_case_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_payload_schemas_accept_encoded_messages(all_types: SystemModel) -> None:
    doc = build_asyncapi(all_types)
    a = _load_module(CASES / "all_types" / "expected" / "a" / "messages.py")
    inner = a.Inner(label="x", child=a.Inner(label="y", child=None))
    everything = a.Everything(
        s="s",
        i=1,
        f=1.5,
        b=True,
        raw=b"\x00\xff",
        dt=datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
        d=datetime.date(2024, 5, 1),
        t=datetime.time(12, 30, tzinfo=datetime.UTC),
        u=uuid.uuid4(),
        dec=decimal.Decimal("12.50"),
        names=["a"],
        scores={"k": [1, None]},
        maybe=None,
        level=a.Level.HIGH,
        lit=2,
        inner=inner,
    )
    payload = json.loads(msgspec.json.encode(everything))
    validator = _validator(doc, "a.Everything")
    assert list(validator.iter_errors(payload)) == []
    for bad in ({**payload, "lit": 4}, {**payload, "level": "nope"}, {"s": "only"}):
        assert list(validator.iter_errors(bad)), bad
    # the consumer's view reads the same bytes
    happened = json.loads(msgspec.json.encode(a.Happened(count=3, level=a.Level.LOW)))
    assert list(_validator(doc, "b.Seen").iter_errors(happened)) == []
    assert list(_validator(doc, "b.Seen").iter_errors({"level": "low"})), "count is required"
    assert list(_validator(doc, "a.Happened").iter_errors(happened)) == []


# -- validation with the official tools ------------------------------------------------


def _validate_with_node(node: str, paths: list[Path]) -> None:
    npm = shutil.which("npm")
    if not (VALIDATOR / "node_modules" / "@asyncapi" / "parser").is_dir():
        assert npm is not None, "node is on PATH but npm is not: cannot install @asyncapi/parser"
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=VALIDATOR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert install.returncode == 0, f"npm ci failed:\n{install.stdout}\n{install.stderr}"
    result = subprocess.run(
        [node, "validate.mjs", *map(str, paths)],
        cwd=VALIDATOR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [d for d in lines if d["severity"] == "error"]
    assert errors == [], json.dumps(errors, indent=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("0 error(s)") == len(paths)


def _validate_with_json_schema(paths: list[Path]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((VALIDATOR / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
        assert errors == [], f"{path}:\n" + "\n".join(errors)


def node_skip_reason(environ: Mapping[str, str], node: str | None) -> str | None:
    """Why the official parser does not run here, or None when it does.

    ``TOOLKIT_SKIP_NODE=1`` skips it on purpose (no ``npm ci``, no network);
    under ``CI=true`` the variable is ignored: CI validates with node whenever
    node is there.
    """
    if environ.get("TOOLKIT_SKIP_NODE") == "1" and environ.get("CI", "").lower() != "true":
        return "TOOLKIT_SKIP_NODE=1: not validated with @asyncapi/parser (no npm ci)"
    if node is None:
        return "node is not on PATH: validated against the AsyncAPI JSON Schema only"
    return None


@pytest.fixture
def documents(tmp_path: Path, edge: SystemModel, all_types: SystemModel) -> list[Path]:
    paths = [DOCS / "asyncapi.json"]
    for name, system in (("edge", edge), ("all_types", all_types)):
        path = tmp_path / f"{name}.json"
        path.write_text(asyncapi_json(system), encoding="utf-8")
        paths.append(path)
    return paths


def test_asyncapi_documents_pass_the_official_parser(documents: list[Path]) -> None:
    node = shutil.which("node")
    reason = node_skip_reason(os.environ, node)
    if reason is not None:
        pytest.skip(reason)
    assert node is not None
    _validate_with_node(node, documents)


def test_asyncapi_documents_match_the_json_schema(documents: list[Path]) -> None:
    _validate_with_json_schema(documents)


def test_node_validation_is_skipped_on_purpose_but_never_in_ci() -> None:
    assert node_skip_reason({"TOOLKIT_SKIP_NODE": "1"}, "/usr/bin/node")
    assert node_skip_reason({"TOOLKIT_SKIP_NODE": "1", "CI": "true"}, "/usr/bin/node") is None
    assert node_skip_reason({"TOOLKIT_SKIP_NODE": "0"}, "/usr/bin/node") is None
    assert node_skip_reason({}, "/usr/bin/node") is None
    assert node_skip_reason({"CI": "true"}, None), "no node: nothing to run, even in CI"
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TOOLKIT_SKIP_NODE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/test_asyncapi.py::test_asyncapi_documents_pass_the_official_parser",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "TOOLKIT_SKIP_NODE=1: not validated with @asyncapi/parser" in result.stdout


def test_json_schema_fallback_catches_errors(tmp_path: Path, example: SystemModel) -> None:
    """The fallback is exercised even where node exists, on a good and a broken document."""
    good = tmp_path / "good.json"
    good.write_text(asyncapi_json(example), encoding="utf-8")
    _validate_with_json_schema([good])
    doc = build_asyncapi(example)
    doc["operations"]["user_service.send_ticket_create.ticket_commands"]["action"] = "publish"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AssertionError, match="action"):
        _validate_with_json_schema([bad])


def test_docs_page_excerpts_are_real() -> None:
    """Every ```json block in docs/system.md marked with its path equals that part of the file."""
    page = (ROOT / "docs" / "system.md").read_text(encoding="utf-8")
    doc = json.loads((DOCS / "asyncapi.json").read_text(encoding="utf-8"))
    excerpts = re.findall(r"<!-- asyncapi.json: (\S+) -->\n```json\n(.*?)\n```", page, re.S)
    assert len(excerpts) >= 3
    for path, text in excerpts:
        assert json.loads(text) == _resolve(doc, "#/" + path), path
