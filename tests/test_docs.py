"""Docs examples are real files, and they run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: this checkout's toolkit first, whatever the installed one is (child processes run elsewhere)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_readme_quickstart_blocks_are_the_example_files() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) == 4
    for path, text in blocks:
        assert (ROOT / path).read_text() == text, f"README block differs from {path}"


def test_quickstart_runs_from_an_empty_folder(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(ROOT / "docs" / "examples" / "quickstart", shop)
    generate = subprocess.run(
        [sys.executable, "-m", "toolkit", "generate"],
        cwd=shop,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert generate.returncode == 0, generate.stderr
    app = subprocess.run(
        [sys.executable, "app.py"], cwd=shop, env=ENV, capture_output=True, text=True, timeout=60
    )
    assert app.returncode == 0, app.stderr
    lines = app.stdout.splitlines()
    assert lines[0] == "order_service: placing 1 x teapot"
    assert lines[1].startswith("shipping_service: shipping teapot for order ")


def test_docs_links_point_at_existing_files() -> None:
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)#]+)\)", text):
        assert (ROOT / target).exists(), target


def test_architecture_names_only_modules_that_exist_and_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:toolkit|codegen|tests)/[\w/.<>-]+)`", text))
    missing = [p for p in sorted(named) if "<" not in p and not (ROOT / p).exists()]
    assert not missing, missing
    packages = sorted(
        init.parent.relative_to(ROOT).as_posix()
        for top in ("toolkit", "codegen")
        for init in (ROOT / top).rglob("__init__.py")
        if init.parent != ROOT / top
    )
    unmentioned = [p for p in packages if f"{p.split('/', 1)[1]}/" not in text]
    assert not unmentioned, unmentioned
