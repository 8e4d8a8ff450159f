"""``toolkit check --against REF``: accepting breaking changes, bad input, git revisions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from codegen.contracts.breaking import Change, accept, unused_accepts
from tests.contracts.system import PYPROJECT, SCENARIOS, edit_schemas, run_cli, scenario_output

# -- accepting on purpose -------------------------------------------------------------


def test_allow_breaking_flag(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = scenario_output(
        project, capsys, "type-changed", "--allow-breaking", "ticket.open"
    )
    assert code == 0, err
    assert "  breaking (accepted): type-changed: count: " in out
    assert "0 breaking changes, 1 accepted" in out


def test_allow_breaking_by_rule(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = scenario_output(
        project, capsys, "type-changed", "--allow-breaking", "ticket.open:enum-narrowed"
    )
    assert code == 1
    code, _, _ = run_cli(
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
    code, out, err = scenario_output(project, capsys, "key-removed")
    assert code == 0, out + err
    assert "breaking (accepted): key-removed" in out


def test_stale_accept_is_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
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
    code, _, err = run_cli(
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
    code, _, err = run_cli(capsys, "check", "--against", "nope.json")
    assert code == 2
    assert "is neither a snapshot file nor a git revision" in err


def test_garbage_snapshot_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "bad.json").write_text("{not json")
    code, _, err = run_cli(capsys, "check", "--against", "bad.json")
    assert code == 2
    assert "bad.json: error: not valid JSON" in err
    (project / "bad.json").write_text('{"messages": {"k": {"kind": "query"}}}')
    code, _, err = run_cli(capsys, "check", "--against", "bad.json")
    assert code == 2
    assert "bad.json: error: not a contract snapshot" in err


def test_schema_errors_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_schemas(project, [("support", 'fields.count = "int"', 'fields.count = "integer"')])
    code, out, err = run_cli(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 2
    assert "schemas/support.toml:" in err and "Traceback" not in out + err


def test_nothing_to_check_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check")
    assert code == 2
    assert "nothing to check" in err


def test_snapshot_setting_is_the_default_ref(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(project / "generated" / "contracts.lock.json", project / "committed.json")
    (project / "pyproject.toml").write_text(PYPROJECT + 'snapshot = "committed.json"\n')
    edit_schemas(project, SCENARIOS["type-changed"][0])
    code, out, _ = run_cli(capsys, "check")
    assert code == 1
    assert "against committed.json" in out


def test_folder_as_ref(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check", "--against", "generated")
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
    edit_schemas(project, SCENARIOS["enum-narrowed"][0])
    assert run_cli(capsys, "generate")[0] == 0
    code, out, _ = run_cli(capsys, "check", "--against", "generated/contracts.lock.json")
    assert code == 0
    code, out, _ = run_cli(capsys, "check", "--against", "HEAD")
    assert code == 1
    assert "against HEAD:generated/contracts.lock.json" in out
    assert "breaking: enum-narrowed: priority:" in out
    code, _, err = run_cli(capsys, "check", "--against", "no-such-branch")
    assert code == 2 and "neither a snapshot file nor a git revision" in err
    code, _, err = run_cli(capsys, "check", "--against=-x")
    assert code == 2


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_without_snapshot(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "schemas", "pyproject.toml")
    _git(project, "commit", "-q", "-m", "schemas only")
    code, _, err = run_cli(capsys, "check", "--against", "HEAD")
    assert code == 2
    assert "revision 'HEAD' has no generated/contracts.lock.json" in err
