"""The justfile's recipes say what the docs say they do."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.cli import ROOT

pytestmark = pytest.mark.skipif(shutil.which("just") is None, reason="just comes with .[dev]")


def _dry_run(*args: str) -> list[str]:
    done = subprocess.run(
        ["just", "--dry-run", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return [line.strip() for line in done.stderr.splitlines() if line.strip()]


def test_check_recipe_compares_contracts_with_the_base_branch() -> None:
    # Against the lock file `toolkit generate` has just rewritten, no breaking change
    # could ever show; the CI recipe must compare with a git revision.
    lines = _dry_run("check")
    assert "toolkit generate --check" in lines
    assert "toolkit docs --check" in lines
    assert "toolkit check --against origin/main" in lines
    assert not any("contracts.lock.json" in line for line in lines)
    assert "toolkit check --against release/2" in _dry_run("check", "release/2")


def test_bench_host_recipe_runs_the_host_benchmark_and_bench_runs_it_too() -> None:
    assert _dry_run("bench-host") == ["python -m bench.host"]
    assert "python -m bench.host" in _dry_run("bench")
