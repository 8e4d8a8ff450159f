"""The generator's stages: schema files -> model -> files, and the drift check.

``generate_files`` returns ``{path: text}``; only :func:`write_files` and the
CLI touch the disk. ``check_files`` compares with the disk and reports
changed, missing *and* leftover files (:mod:`codegen.output`).
"""

from __future__ import annotations

from pathlib import Path

from codegen.build import load_system
from codegen.contracts.snapshot import SNAPSHOT_FILE, render_snapshot
from codegen.model import SystemModel
from codegen.output import Drift, check_files, write_files
from codegen.python.render import render_python

__all__ = ["Drift", "check_files", "generate_files", "render_files", "write_files"]


def generate_files(schemas_dir: Path, package: str = "generated") -> dict[str, str]:
    """Load, validate and render; raises SchemaErrors for bad schemas.

    The files are the Python package and the contract snapshot (JSON).
    """
    return render_files(load_system(schemas_dir, package))


def render_files(system: SystemModel) -> dict[str, str]:
    """The files of a loaded system (its warnings are the caller's to show)."""
    files = render_python(system)
    files[SNAPSHOT_FILE] = render_snapshot(system)
    return dict(sorted(files.items()))
