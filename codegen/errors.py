"""Schema diagnostics: what is wrong, where, and how to fix it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

import msgspec

__all__ = ["Diagnostic", "SchemaErrors", "format_key_path", "locate"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_key_path(path: Sequence[str | int]) -> str:
    """Render a key path the way it would be written in TOML: ``commands."ticket.create".fields``."""
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        elif _BARE_KEY.match(part):
            parts.append(part)
        else:
            parts.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ".".join(parts)


class Diagnostic(msgspec.Struct, frozen=True, order=True):
    """One problem in one schema file."""

    file: str
    line: int
    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.path:
            where += f": {self.path}"
        text = f"{where}: error: {self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text


class SchemaErrors(Exception):
    """Every problem found in one run, sorted by file and line."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics))
        super().__init__(self.render())

    def render(self) -> str:
        lines = [d.render() for d in self.diagnostics]
        count = len(self.diagnostics)
        lines.append(f"{count} error{'s' if count != 1 else ''} in schema files")
        return "\n".join(lines)


def _key_path(lhs: str) -> list[str] | None:
    try:
        doc = tomllib.loads(f"{lhs} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    node: object = doc
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
    return path if node == 0 else None


def _split_assignment(line: str) -> str | None:
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "=":
            return line[:index]
        elif char == "#":
            return None
    return None


_HEADER = re.compile(r"^\s*\[\[?(?P<inner>[^\]]+)\]\]?\s*(#.*)?$")


def locate(text: str, path: Sequence[str | int]) -> int:
    """Best-effort line number of ``path`` in a TOML document (0 when unknown).

    TOML parsers report no positions for values, so this re-reads headers and
    keys line by line and returns the line that introduces the longest prefix
    of ``path``.
    """
    target = [p for p in path if isinstance(p, str)]
    header: list[str] = []
    best_line, best_score = 0, 0
    # A table named only through its children ([commands."a.do"] for "commands").
    child_line = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line)
        full: list[str] | None
        if match:
            full = _key_path(match.group("inner"))
            if full is None:
                continue
            header = full
        else:
            lhs = _split_assignment(line)
            if lhs is None or not lhs.strip():
                continue
            keys = _key_path(lhs.strip())
            if keys is None:
                continue
            full = header + keys
        if len(full) > best_score and target[: len(full)] == full:
            best_line, best_score = lineno, len(full)
        elif not child_line and len(full) > len(target) and full[: len(target)] == target:
            child_line = lineno
    if best_score < len(target) and child_line:
        return child_line
    return best_line


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
