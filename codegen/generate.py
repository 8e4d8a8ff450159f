"""The generator's stages: schema files -> model -> files, and the drift check.

``generate_files`` returns ``{path: text}``; only :func:`write_files` and the
CLI touch the disk. ``check_files`` compares with the disk and reports
changed, missing *and* leftover files (:mod:`codegen.output`).
"""

from __future__ import annotations

from pathlib import Path

from codegen.build import load_system
from codegen.output import Drift, check_files, write_files
from codegen.python.render import render_system

__all__ = ["Drift", "check_files", "generate_files", "write_files"]


def generate_files(schemas_dir: Path, package: str = "generated") -> dict[str, str]:
    """Load, validate and render; raises SchemaErrors for bad schemas."""
    return render_system(load_system(schemas_dir, package))
