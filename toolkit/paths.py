"""How the toolkit shows a path to a person: relative to a folder when it is inside it.

A leaf module, shared by the command line and the generator's messages.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["relative_path"]


def relative_path(path: Path, root: Path | None = None) -> str:
    """``path`` relative to ``root`` (default: the working directory), else as given.

    Always with forward slashes, so messages and settings read the same on
    every system.
    """
    base = (root or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()
