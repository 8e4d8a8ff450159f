"""`toolkit docs`: the committed copy, `--check`, bad schemas, determinism."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen.build import load_system
from codegen.model import SystemModel
from codegen.system.asyncapi import asyncapi_json
from tests.system.conftest import (
    CASES,
    DOCS,
    ROOT,
    SCHEMAS,
)
from toolkit.cli import main
from toolkit.commands.docs import docs_files

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
