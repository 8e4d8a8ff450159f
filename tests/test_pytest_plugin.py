"""The pytest plugin in a user's project, run the way users run it: plain ``pytest``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli import ROOT, toolkit_cli

USER_TEST = """
from generated.service_map import SERVICE_MAP
from generated.order_service import PlaceOrder


def test_generated_code_imports():
    assert "order_service" in SERVICE_MAP.services
    assert PlaceOrder.__name__ == "PlaceOrder"


async def test_fixture_system(toolkit_system):
    assert toolkit_system.service_map is SERVICE_MAP
"""


def test_plain_pytest_finds_the_generated_package(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "docs" / "examples" / "quickstart" / "schemas", project / "schemas")
    (project / "pyproject.toml").write_text(
        '[tool.toolkit]\nschemas = "schemas"\n\n[tool.pytest.ini_options]\nasyncio_mode = "auto"\n'
    )
    assert toolkit_cli("generate", cwd=project).returncode == 0
    (project / "tests").mkdir()
    (project / "tests" / "test_shop.py").write_text(USER_TEST)
    # -I: no working directory on sys.path, exactly as the `pytest` console script runs.
    done = subprocess.run(
        [sys.executable, "-I", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
