"""The README's install, done in a fresh virtual environment, gives users typed imports.

The default editable install of setuptools is an import hook that type
checkers cannot follow; the README's command must make ``toolkit`` visible to
``mypy --strict`` in a user's project.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.cli import ROOT


def _readme_install_args() -> list[str]:
    """The flags of the README's test command's ``pip install`` (after ``-e PATH``)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"^pip install -e \"\.\[dev\]\"(?P<flags>[^&\n]*)&& python -m pytest$", readme, re.M
    )
    assert found, (
        'the README\'s test command is not `pip install -e ".[dev]" ... && python -m pytest`'
    )
    return shlex.split(found["flags"])


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_readme_install_is_visible_to_mypy(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    # The dependencies (and pip, mypy) come from this interpreter's site-packages as a
    # plain path entry: its .pth files, and so its own install of toolkit, stay inactive.
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    ).stdout.strip()
    (Path(purelib) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert _run(python, "-c", "import toolkit", cwd=tmp_path).returncode != 0

    install = _run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "-e",
        ROOT,
        *_readme_install_args(),
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    project = tmp_path / "shop"
    shutil.copytree(ROOT / "docs" / "examples" / "quickstart", project)
    (project / "pyproject.toml").write_text('[tool.toolkit]\nschemas = "schemas"\n')
    generate = _run(python, "-m", "toolkit", "generate", cwd=project)
    assert generate.returncode == 0, generate.stderr
    typed = _run(python, "-m", "mypy", "--strict", "--no-incremental", "app.py", cwd=project)
    assert typed.returncode == 0, typed.stdout + typed.stderr
