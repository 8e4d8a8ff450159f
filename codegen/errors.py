"""Schema diagnostics: what is wrong (or probably not meant), where, and how to fix it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Literal

import msgspec

__all__ = [
    "Diagnostic",
    "SchemaErrors",
    "format_key_path",
    "key_path_at",
    "locate",
    "render_diagnostics",
]

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
    """One problem in one schema file.

    An ``error`` stops generation. A ``warning`` is a schema that works but
    probably not as meant (a subscription that receives nothing, events
    received and skipped unread): it is printed, and fails the run only under
    ``--strict``.
    """

    file: str
    line: int
    path: str
    message: str
    hint: str = ""
    severity: Literal["error", "warning"] = "error"

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.path:
            where += f": {self.path}"
        text = f"{where}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text


def render_diagnostics(diagnostics: Sequence[Diagnostic]) -> str:
    """Each diagnostic, sorted by file and line, then how many errors and warnings there are."""
    ordered = sorted(set(diagnostics))
    counts = [
        f"{n} {severity}{'s' if n != 1 else ''}"
        for severity in ("error", "warning")
        if (n := sum(d.severity == severity for d in ordered))
    ]
    return "\n".join([*(d.render() for d in ordered), f"{' and '.join(counts)} in schema files"])


class SchemaErrors(Exception):
    """Every problem found in one run, sorted by file and line."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics))
        super().__init__(self.render())

    def render(self) -> str:
        return render_diagnostics(self.diagnostics)


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


def _index(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """(line, full key path) of every header and key line, computed once per text."""
    cached = _INDEX_CACHE.get(text)
    if cached is not None:
        return cached
    entries: list[tuple[int, tuple[str, ...]]] = []
    header: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line)
        if match:
            full = _key_path(match.group("inner"))
            if full is None:
                continue
            header = full
            entries.append((lineno, tuple(full)))
            continue
        lhs = _split_assignment(line)
        if lhs is None or not lhs.strip():
            continue
        keys = _key_path(lhs.strip())
        if keys is not None:
            entries.append((lineno, tuple(header + keys)))
    if len(_INDEX_CACHE) > 256:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[text] = entries
    return entries


_INDEX_CACHE: dict[str, list[tuple[int, tuple[str, ...]]]] = {}


def _lookup(text: str) -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """(exact path -> first line, path prefix -> first line under it), once per text."""
    cached = _LOOKUP_CACHE.get(text)
    if cached is not None:
        return cached
    exact: dict[tuple[str, ...], int] = {}
    under: dict[tuple[str, ...], int] = {}
    for lineno, full in _index(text):
        exact.setdefault(full, lineno)
        for cut in range(1, len(full)):
            under.setdefault(full[:cut], lineno)
    if len(_LOOKUP_CACHE) > 256:
        _LOOKUP_CACHE.clear()
    _LOOKUP_CACHE[text] = (exact, under)
    return exact, under


_LOOKUP_CACHE: dict[str, tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]] = {}


def locate(text: str, path: Sequence[str | int]) -> int:
    """Best-effort line number of ``path`` in a TOML document (0 when unknown).

    TOML parsers report no positions for values, so this re-reads headers and
    keys (once per document) and returns the line that introduces the longest
    prefix of ``path`` -- or, for a table named only through its children
    (``[commands."a.do"]`` for ``commands``), the first of those.
    """
    target = tuple(p for p in path if isinstance(p, str))
    exact, under = _lookup(text)
    if target in exact:
        return exact[target]
    if target in under:
        return under[target]
    for cut in range(len(target) - 1, 0, -1):
        line = exact.get(target[:cut])
        if line is not None:
            return line
    return 0


def key_path_at(text: str, line: int) -> tuple[str, ...]:
    """The key path of the last header or key that starts at or before ``line`` (``()`` when none)."""
    found: tuple[str, ...] = ()
    for lineno, full in _index(text):
        if lineno > line:
            break
        found = full
    return found
