"""The corpus: tests/cases/<name>/ holds schemas/ and either expected/ (generated
files) or expected_error.txt (the exact error text). ``pytest --update-cases``
rewrites expectations from the current generator; review the diff."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from codegen.errors import SchemaErrors
from codegen.generate import check_files, generate_files

CASES = Path(__file__).parent / "cases"


def _cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "schemas").is_dir())


@pytest.mark.parametrize("name", _cases())
def test_case(name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES / name
    update = request.config.getoption("--update-cases")
    monkeypatch.chdir(case)  # file names in errors and headers are relative to the case
    try:
        files = generate_files(Path("schemas"), "generated")
    except SchemaErrors as exc:
        actual = exc.render() + "\n"
        expected_path = case / "expected_error.txt"
        if update:
            expected_path.write_text(actual)
            shutil.rmtree(case / "expected", ignore_errors=True)
        assert expected_path.exists(), f"{name}: unexpected schema errors:\n{actual}"
        assert actual == expected_path.read_text()
        return
    expected_dir = case / "expected"
    if update:
        shutil.rmtree(expected_dir, ignore_errors=True)
        (case / "expected_error.txt").unlink(missing_ok=True)
        for path, text in files.items():
            target = expected_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    assert not (case / "expected_error.txt").exists(), (
        f"{name}: expected an error but generation succeeded"
    )
    drift = check_files(files, expected_dir)
    assert drift.clean, (
        f"{name}: output differs from expected/ (pytest --update-cases to accept)\n{drift.diff}"
    )


def test_every_case_has_an_expectation() -> None:
    for name in _cases():
        case = CASES / name
        assert (case / "expected").is_dir() or (case / "expected_error.txt").is_file(), name
    assert os.path.isdir(CASES)
