"""Breaking-change detection (codegen.contracts.breaking): each rule, the comparison as a
function, the repository's own snapshot, and the outputs docs/compatibility.md shows.

``python -m tests.contracts.test_breaking`` prints the doc blocks to paste after a
wording change.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from codegen.build import load_system
from codegen.contracts.breaking import CHANGE_RULES, compare
from codegen.contracts.snapshot import Snapshot, build_snapshot, load_snapshot
from tests.contracts.system import (
    DOC,
    ROOT,
    SCENARIOS,
    SUPPORT,
    USERS,
    edit_schemas,
    run_cli,
    scenario_output,
    setup_project,
)
from toolkit.cli import main


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rule(project: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = scenario_output(project, capsys, name)
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
    code, out, _ = run_cli(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 0
    assert "no changes (3 routing keys)" in out


def test_every_breaking_rule_has_a_scenario() -> None:
    covered = {rule for _, expected in SCENARIOS.values() for rule, _, b in expected if b}
    from codegen.contracts.breaking import BREAKING_RULES

    assert covered == set(BREAKING_RULES)


# -- the snapshot and the comparison as functions -------------------------------------------


def _snapshot(root: Path) -> Snapshot:
    return build_snapshot(load_system(root / "schemas"))


def test_compare_is_empty_for_identical_snapshots(tmp_path: Path) -> None:
    setup_project(tmp_path)
    snap = _snapshot(tmp_path)
    assert compare(snap, snap) == []


def test_removed_field_breaks_only_when_a_consumer_requires_it(tmp_path: Path) -> None:
    setup_project(tmp_path)
    old = _snapshot(tmp_path)
    edit_schemas(tmp_path, SCENARIOS["field-removed"][0])
    changes = compare(old, _snapshot(tmp_path))
    [change] = [c for c in changes if c.rule == "field-removed"]
    assert change.breaking and "support's view NewUser" in change.message


def test_nested_struct_changes_are_reported_with_their_path(tmp_path: Path) -> None:
    setup_project(tmp_path)
    users = tmp_path / "schemas" / "users.toml"
    users.write_text(
        users.read_text()
        + '\n[types.Address]\nkind = "struct"\nfields.city = "str"\nfields.zip = "int"\n'
    )
    edit_schemas(
        tmp_path,
        [("users", 'fields.plan = "Plan"', 'fields.plan = "Plan"\nfields.home = "list[Address]"')],
    )
    old = _snapshot(tmp_path)
    edit_schemas(tmp_path, [("users", 'fields.zip = "int"', 'fields.zip = "str"')])
    [change] = compare(old, _snapshot(tmp_path))
    assert (change.field, change.rule, change.breaking) == ("home[].zip", "type-changed", True)


def test_new_view_requiring_a_field_old_events_lack(tmp_path: Path) -> None:
    setup_project(tmp_path)
    old = _snapshot(tmp_path)
    edit_schemas(
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
    setup_project(tmp_path)
    snap = _snapshot(tmp_path)
    again = load_snapshot(msgspec.json.encode(snap), "x")
    assert again == snap


# -- the repository's own snapshot ------------------------------------------------------------


def test_repository_matches_its_committed_snapshot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(capsys, "check", "--against", "generated/contracts.lock.json")
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
    code, out, err = scenario_output(project, capsys, name)
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


if __name__ == "__main__":  # print the doc blocks: python -m tests.contracts.test_breaking
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
            setup_project(root)
            os.chdir(root)
            capture = _Capture()
            with contextlib.redirect_stdout(capture.out), contextlib.redirect_stderr(capture.err):
                main(["generate"])
                blocks.append((scenario, _doc_block(root, capture, scenario)))  # type: ignore[arg-type]
            os.chdir(ROOT)
    for scenario, block in blocks:
        print(f"<!-- {scenario} -->\n```console\n{block}```\n")
