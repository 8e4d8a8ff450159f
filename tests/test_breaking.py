"""Breaking-change detection: ``toolkit check --against REF`` and codegen.contracts.breaking.

Each scenario starts from the same small system (BASE), runs
``toolkit generate`` to write the snapshot, edits the schemas, and runs
``toolkit check --against generated/contracts.lock.json``. The output of
every scenario is also shown, verbatim, in docs/compatibility.md
(``test_docs_show_real_output``; ``python tests/test_breaking.py`` prints
the blocks to paste after a wording change).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest

from codegen.build import load_system
from codegen.contracts.breaking import CHANGE_RULES, Change, accept, compare, unused_accepts
from codegen.contracts.snapshot import Snapshot, build_snapshot, load_snapshot
from toolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
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


def _setup(root: Path) -> None:
    (root / "schemas").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "schemas" / "users.toml").write_text(USERS)
    (root / "schemas" / "support.toml").write_text(SUPPORT)


def _edit(root: Path, edits: list[Edit]) -> None:
    for name, old, new in edits:
        path = root / "schemas" / f"{name}.toml"
        text = path.read_text()
        if old:
            assert old in text, (name, old)
            text = text.replace(old, new)
        else:
            text += new
        path.write_text(text)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, "generate")[0] == 0
    return tmp_path


def _scenario_output(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, *extra: str
) -> tuple[int, str, str]:
    _edit(project, SCENARIOS[name][0])
    return _run(capsys, "check", "--against", "generated/contracts.lock.json", *extra)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rule(project: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = _scenario_output(project, capsys, name)
    expected = SCENARIOS[name][1]
    for rule, field, breaking in expected:
        verdict = "breaking" if breaking else "safe"
        where = f"{field}: " if field else ""
        assert f"  {verdict}: {rule}: {where}" in out, out
    assert code == (1 if any(b for _, _, b in expected) else 0), out + err
    if code == 1:
        assert "--allow-breaking" in err
    assert "Traceback" not in out + err


def test_no_changes_exit_0(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 0
    assert "no changes (3 routing keys)" in out


def test_every_breaking_rule_has_a_scenario() -> None:
    covered = {rule for _, expected in SCENARIOS.values() for rule, _, b in expected if b}
    from codegen.contracts.breaking import BREAKING_RULES

    assert covered == set(BREAKING_RULES)


# -- accepting on purpose -------------------------------------------------------------


def test_allow_breaking_flag(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _scenario_output(
        project, capsys, "type-changed", "--allow-breaking", "ticket.open"
    )
    assert code == 0, err
    assert "  breaking (accepted): type-changed: count: " in out
    assert "0 breaking changes, 1 accepted" in out


def test_allow_breaking_by_rule(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _scenario_output(
        project, capsys, "type-changed", "--allow-breaking", "ticket.open:enum-narrowed"
    )
    assert code == 1
    code, _, _ = _run(
        capsys,
        "check",
        "--against",
        "generated/contracts.lock.json",
        "--allow-breaking",
        "ticket.open:type-changed",
    )
    assert code == 0


def test_accept_breaking_in_pyproject(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT + 'accept_breaking = ["user.deleted"]\n')
    code, out, err = _scenario_output(project, capsys, "key-removed")
    assert code == 0, out + err
    assert "breaking (accepted): key-removed" in out


def test_stale_accept_is_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        capsys,
        "check",
        "--against",
        "generated/contracts.lock.json",
        "--allow-breaking",
        "user.deleted",
    )
    assert code == 0
    assert "note: accepted 'user.deleted' matches no breaking change" in err


def test_bad_accept_entry_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        capsys, "check", "--against", "generated/contracts.lock.json", "--allow-breaking", "x:nope"
    )
    assert code == 2
    assert "RULE is one of" in err


def test_accept_and_unused_accepts_functions() -> None:
    changes = [
        Change("a", "", "key-removed", True, "gone"),
        Change("b", "f", "field-added", False, "new"),
    ]
    marked = accept(changes, ["a"])
    assert marked[0].accepted and not marked[1].accepted
    assert unused_accepts(changes, ["a", "b", "c:key-removed"]) == ["b", "c:key-removed"]


# -- bad input --------------------------------------------------------------------------


def test_missing_ref_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "check", "--against", "nope.json")
    assert code == 2
    assert "is neither a snapshot file nor a git revision" in err


def test_garbage_snapshot_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "bad.json").write_text("{not json")
    code, _, err = _run(capsys, "check", "--against", "bad.json")
    assert code == 2
    assert "bad.json: error: not valid JSON" in err
    (project / "bad.json").write_text('{"messages": {"k": {"kind": "query"}}}')
    code, _, err = _run(capsys, "check", "--against", "bad.json")
    assert code == 2
    assert "bad.json: error: not a contract snapshot" in err


def test_schema_errors_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(project, [("support", 'fields.count = "int"', 'fields.count = "integer"')])
    code, out, err = _run(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 2
    assert "schemas/support.toml:" in err and "Traceback" not in out + err


def test_nothing_to_check_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "check")
    assert code == 2
    assert "nothing to check" in err


def test_snapshot_setting_is_the_default_ref(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(project / "generated" / "contracts.lock.json", project / "committed.json")
    (project / "pyproject.toml").write_text(PYPROJECT + 'snapshot = "committed.json"\n')
    _edit(project, SCENARIOS["type-changed"][0])
    code, out, _ = _run(capsys, "check")
    assert code == 1
    assert "against committed.json" in out


def test_folder_as_ref(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "check", "--against", "generated")
    assert code == 0
    assert "against generated/contracts.lock.json" in out


# -- git revisions ------------------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "v1")
    # Change the schemas and regenerate: the working tree's snapshot now matches them,
    # so only the revision still knows the old contracts.
    _edit(project, SCENARIOS["enum-narrowed"][0])
    assert _run(capsys, "generate")[0] == 0
    code, out, _ = _run(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 0
    code, out, _ = _run(capsys, "check", "--against", "HEAD")
    assert code == 1
    assert "against HEAD:generated/contracts.lock.json" in out
    assert "breaking: enum-narrowed: priority:" in out
    code, _, err = _run(capsys, "check", "--against", "no-such-branch")
    assert code == 2 and "neither a snapshot file nor a git revision" in err
    code, _, err = _run(capsys, "check", "--against=-x")
    assert code == 2


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_without_snapshot(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "schemas", "pyproject.toml")
    _git(project, "commit", "-q", "-m", "schemas only")
    code, _, err = _run(capsys, "check", "--against", "HEAD")
    assert code == 2
    assert "revision 'HEAD' has no generated/contracts.lock.json" in err


# -- the snapshot and the comparison as functions -------------------------------------------


def _snapshot(root: Path) -> Snapshot:
    return build_snapshot(load_system(root / "schemas"))


def test_compare_is_empty_for_identical_snapshots(tmp_path: Path) -> None:
    _setup(tmp_path)
    snap = _snapshot(tmp_path)
    assert compare(snap, snap) == []


def test_removed_field_breaks_only_when_a_consumer_requires_it(tmp_path: Path) -> None:
    _setup(tmp_path)
    old = _snapshot(tmp_path)
    _edit(tmp_path, SCENARIOS["field-removed"][0])
    changes = compare(old, _snapshot(tmp_path))
    [change] = [c for c in changes if c.rule == "field-removed"]
    assert change.breaking and "support's view NewUser" in change.message


def test_nested_struct_changes_are_reported_with_their_path(tmp_path: Path) -> None:
    _setup(tmp_path)
    users = tmp_path / "schemas" / "users.toml"
    users.write_text(
        users.read_text()
        + '\n[types.Address]\nkind = "struct"\nfields.city = "str"\nfields.zip = "int"\n'
    )
    _edit(
        tmp_path,
        [("users", 'fields.plan = "Plan"', 'fields.plan = "Plan"\nfields.home = "list[Address]"')],
    )
    old = _snapshot(tmp_path)
    _edit(tmp_path, [("users", 'fields.zip = "int"', 'fields.zip = "str"')])
    [change] = compare(old, _snapshot(tmp_path))
    assert (change.field, change.rule, change.breaking) == ("home[].zip", "type-changed", True)


def test_new_view_requiring_a_field_old_events_lack(tmp_path: Path) -> None:
    _setup(tmp_path)
    old = _snapshot(tmp_path)
    _edit(
        tmp_path,
        [
            ("users", 'fields.plan = "Plan"\n', 'fields.plan = "Plan"\nfields.locale = "str"\n'),
            ("support", 'fields.email = "str"\n', 'fields.email = "str"\nfields.locale = "str"\n'),
        ],
    )
    changes = compare(old, _snapshot(tmp_path))
    [change] = [c for c in changes if c.field == "locale"]
    assert change.breaking
    assert "reading events published before this change" in change.message


def test_rules_have_titles() -> None:
    assert {"key-removed", "enum-widened", "type-changed"} <= set(CHANGE_RULES)


def test_snapshot_round_trips(tmp_path: Path) -> None:
    _setup(tmp_path)
    snap = _snapshot(tmp_path)
    again = load_snapshot(msgspec.json.encode(snap), "x")
    assert again == snap


# -- the repository's own snapshot ------------------------------------------------------------


def test_repository_matches_its_committed_snapshot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = _run(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 0, out + err


# -- docs ---------------------------------------------------------------------------------------

#: scenarios shown in docs/compatibility.md, in order
DOC_SCENARIOS = [
    "key-removed",
    "kind-changed",
    "owner-changed",
    "field-removed",
    "type-changed",
    "required-field-added",
    "wire-name-changed",
    "enum-widened",
    "enum-narrowed",
    "field-added-safe",
]


def _doc_block(project: Path, capsys: pytest.CaptureFixture[str], name: str) -> str:
    code, out, err = _scenario_output(project, capsys, name)
    return (
        f"$ toolkit check --against generated/contracts.lock.json\n{out}{err}(exit status {code})\n"
    )


@pytest.mark.parametrize("name", DOC_SCENARIOS)
def test_docs_show_real_output(
    project: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    block = _doc_block(project, capsys, name)
    assert block in DOC.read_text(), f"docs/compatibility.md does not show this output:\n{block}"


def test_docs_show_the_base_system() -> None:
    text = DOC.read_text()
    assert USERS in text and SUPPORT in text


if __name__ == "__main__":  # print the doc blocks: python tests/test_breaking.py
    import contextlib
    import io
    import os
    import tempfile

    class _Capture:
        def __init__(self) -> None:
            self.out, self.err = io.StringIO(), io.StringIO()

        def readouterr(self) -> tuple[str, str]:
            out, err = self.out.getvalue(), self.err.getvalue()
            for stream in (self.out, self.err):
                stream.seek(0)
                stream.truncate(0)
            return out, err

    blocks = []
    for scenario in DOC_SCENARIOS:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            _setup(root)
            os.chdir(root)
            capture = _Capture()
            with contextlib.redirect_stdout(capture.out), contextlib.redirect_stderr(capture.err):
                main(["generate"])
                blocks.append((scenario, _doc_block(root, capture, scenario)))  # type: ignore[arg-type]
            os.chdir(ROOT)
    for scenario, block in blocks:
        print(f"<!-- {scenario} -->\n```console\n{block}```\n")
