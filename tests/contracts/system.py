"""The small two-service system the breaking-change tests edit, and the edits (scenarios).

Each scenario starts from the same system, runs ``toolkit generate`` to write
the snapshot, edits the schemas, and runs ``toolkit check --against
generated/contracts.lock.json``. The output of every scenario is also shown,
verbatim, in docs/compatibility.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compatibility.md"

PYPROJECT = """[tool.toolkit]
schemas = "schemas"
output = "generated"
"""

USERS = """[service]
name = "users"

[types.Plan]
kind = "enum"
values = ["free", "pro"]

[events."user.registered"]
class = "UserRegistered"
fields.user_id = "uuid"
fields.email = "str"
fields.plan = "Plan"

[events."user.deleted"]
class = "UserDeleted"
fields.user_id = "uuid"

[sends."ticket.open"]
service = "support"
"""

SUPPORT = """[service]
name = "support"

[channels.support_commands]
kind = "queue"
commands = true

[channels.user_events]
kind = "stream"
subscribe = ["user.registered"]

[types.Priority]
kind = "enum"
values = ["low", "high"]

[commands."ticket.open"]
class = "OpenTicket"
fields.subject = "str"
fields.priority = { type = "Priority", default = "low" }
fields.count = "int"

[subscribes."user.registered"]
class = "NewUser"
fields.user_id = "uuid"
fields.email = "str"
"""

#: name -> (edits as (file, old text, new text), expected (rule, field, breaking) in the output)
Edit = tuple[str, str, str]
SCENARIOS: dict[str, tuple[list[Edit], list[tuple[str, str, bool]]]] = {
    "key-removed": (
        [
            (
                "users",
                '[events."user.deleted"]\nclass = "UserDeleted"\nfields.user_id = "uuid"\n',
                "",
            )
        ],
        [("key-removed", "", True)],
    ),
    "kind-changed": (
        [
            (
                "users",
                '[events."user.deleted"]',
                '[channels.user_commands]\nkind = "queue"\ncommands = true\n\n[commands."user.deleted"]',
            )
        ],
        [("kind-changed", "", True)],
    ),
    "owner-changed": (
        [
            (
                "users",
                '[events."user.deleted"]\nclass = "UserDeleted"\nfields.user_id = "uuid"\n',
                "",
            ),
            (
                "support",
                "",
                '\n[events."user.deleted"]\nclass = "UserDeleted"\nfields.user_id = "uuid"\n',
            ),
        ],
        [("owner-changed", "", True)],
    ),
    "field-removed": (
        [("users", 'fields.email = "str"\n', ""), ("support", 'fields.email = "str"\n', "")],
        [("field-removed", "email", True)],
    ),
    "field-removed-safe": (
        [("users", 'fields.plan = "Plan"\n', "")],
        [("field-removed", "plan", False)],
    ),
    "type-changed": (
        [("support", 'fields.count = "int"', 'fields.count = "str"')],
        [("type-changed", "count", True)],
    ),
    "type-changed-safe": (
        [("support", 'fields.count = "int"', 'fields.count = "float"')],
        [("type-changed", "count", False)],
    ),
    "required-field-added": (
        [("support", 'fields.count = "int"\n', 'fields.count = "int"\nfields.due = "date"\n')],
        [("required-field-added", "due", True)],
    ),
    "field-added-safe": (
        [
            (
                "support",
                'fields.count = "int"\n',
                'fields.count = "int"\nfields.due = "optional[date]"\n',
            ),
            ("users", 'fields.plan = "Plan"\n', 'fields.plan = "Plan"\nfields.locale = "str"\n'),
        ],
        [("field-added", "due", False), ("required-field-added", "locale", False)],
    ),
    "wire-name-changed": (
        [
            (
                "users",
                'fields.email = "str"',
                'fields.email = { type = "str", wire_name = "mail" }',
            ),
            (
                "support",
                'fields.email = "str"',
                'fields.email = { type = "str", wire_name = "mail" }',
            ),
        ],
        [("wire-name-changed", "email", True)],
    ),
    "enum-widened": (
        [("users", 'values = ["free", "pro"]', 'values = ["free", "pro", "team"]')],
        [("enum-widened", "plan", True)],
    ),
    "enum-narrowed": (
        [("support", 'values = ["low", "high"]', 'values = ["low"]')],
        [("enum-narrowed", "priority", True)],
    ),
    "enum-widened-safe": (
        [("support", 'values = ["low", "high"]', 'values = ["low", "high", "urgent"]')],
        [("enum-widened", "priority", False)],
    ),
}


def setup_project(root: Path) -> None:
    (root / "schemas").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "schemas" / "users.toml").write_text(USERS)
    (root / "schemas" / "support.toml").write_text(SUPPORT)


def edit_schemas(root: Path, edits: list[Edit]) -> None:
    for name, old, new in edits:
        path = root / "schemas" / f"{name}.toml"
        text = path.read_text()
        if old:
            assert old in text, (name, old)
            text = text.replace(old, new)
        else:
            text += new
        path.write_text(text)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scenario_output(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, *extra: str
) -> tuple[int, str, str]:
    edit_schemas(project, SCENARIOS[name][0])
    return run_cli(capsys, "check", "--against", "generated/contracts.lock.json", *extra)
