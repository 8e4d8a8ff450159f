"""Systems the AsyncAPI tests describe: the example, the awkward edge cases, every type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codegen.build import load_system
from codegen.model import SystemModel

ROOT = Path(__file__).resolve().parents[2]
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


def write_schemas(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def example() -> SystemModel:
    return load_system(SCHEMAS)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> SystemModel:
    return load_system(write_schemas(tmp_path_factory.mktemp("edge") / "schemas", EDGE_SCHEMAS))


@pytest.fixture(scope="module")
def all_types() -> SystemModel:
    return load_system(CASES / "all_types" / "schemas")


def resolve_ref(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += refs_in(value)
        return found
    if isinstance(node, list):
        return [r for item in node for r in refs_in(item)]
    return []
