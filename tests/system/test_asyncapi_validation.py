"""The documents pass the official AsyncAPI parser and JSON Schema; payload schemas accept
what msgspec writes."""

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

from codegen.model import SystemModel
from codegen.system.asyncapi import asyncapi_json, build_asyncapi
from tests.system.conftest import (
    CASES,
    DOCS,
    ROOT,
    VALIDATOR,
    resolve_ref,
)

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
            "tests/system/test_asyncapi_validation.py::test_asyncapi_documents_pass_the_official_parser",
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
        assert json.loads(text) == resolve_ref(doc, "#/" + path), path
