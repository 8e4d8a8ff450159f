"""A project folder holding the small system, generated, as the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.system import run_cli, setup_project


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    setup_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "generate")[0] == 0
    return tmp_path
