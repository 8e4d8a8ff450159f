"""Stage 1, load: schema files (TOML) -> :class:`~codegen.schema.SchemaFile` structs, with locations.

``tomllib`` parses each file, :mod:`codegen.shape` checks it against the
typed schema format and ``msgspec.convert`` decodes it: a syntax error, or
every shape error of every file (a string where a table belongs, an unknown
key), is reported with file, line and key path. A
:class:`SourceFile` keeps the text, so that later stages can point at any
key of it (:func:`~codegen.errors.locate`) and collect their diagnostics.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import msgspec

from codegen.errors import Diagnostic, SchemaErrors, format_key_path, key_path_at, locate
from codegen.model import Place
from codegen.schema import MAX_NESTING, SchemaFile
from codegen.shape import shape_problems
from toolkit.paths import relative_path

__all__ = ["SourceFile", "load_files"]


class SourceFile:
    """One schema file: its text, its decoded declarations and the problems found in it."""

    def __init__(self, path: Path, display: str, text: str, decl: SchemaFile) -> None:
        self.path = path
        #: how messages and generated headers name the file (relative to the working folder)
        self.display = display
        self.text = text
        self.decl = decl
        self.hash = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.diagnostics: list[Diagnostic] = []

    def place(self, *path: str | int) -> Place:
        return Place(self.display, locate(self.text, path), format_key_path(path))

    def error(self, path: Iterable[str | int], message: str, hint: str = "") -> None:
        self._add(path, message, hint, "error")

    def warn(self, path: Iterable[str | int], message: str, hint: str = "") -> None:
        self._add(path, message, hint, "warning")

    def _add(
        self,
        path: Iterable[str | int],
        message: str,
        hint: str,
        severity: Literal["error", "warning"],
    ) -> None:
        keys = tuple(path)
        self.diagnostics.append(
            Diagnostic(
                self.display,
                locate(self.text, keys),
                format_key_path(keys),
                message,
                hint,
                severity,
            )
        )


# What can hold a bracket that does not nest: comments and the four kinds of TOML string.
_NESTING_TOKEN = re.compile(
    r"""\#[^\n]*
      | \"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\""{0,2}
      | '''(?:[^']|'(?!''))*''''{0,2}
      | "(?:[^"\\\n]|\\.)*"
      | '[^'\n]*'
      | (?P<open>[\[{])
      | (?P<close>[\]}])""",
    re.VERBOSE | re.DOTALL,
)


def _too_deep(text: str) -> int:
    """The line where arrays or inline tables first nest deeper than MAX_NESTING, else 0.

    ``tomllib`` parses nested values recursively, so a file of a few thousand
    ``[`` would end in RecursionError; this scan comes first.
    """
    depth = 0
    for match in _NESTING_TOKEN.finditer(text):
        if match.group("open"):
            depth += 1
            if depth > MAX_NESTING:
                return text.count("\n", 0, match.start()) + 1
        elif match.group("close"):
            depth = max(depth - 1, 0)
    return 0


def _load_file(path: Path, sink: list[Diagnostic]) -> SourceFile | None:
    display = relative_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        sink.append(Diagnostic(display, 0, "", f"cannot read schema file: {exc}"))
        return None
    deep = _too_deep(text)
    if deep:
        sink.append(
            Diagnostic(
                display,
                deep,
                format_key_path(key_path_at(text, deep)),
                f"arrays and inline tables nest more than {MAX_NESTING} levels deep here; "
                f"the schema format allows {MAX_NESTING}",
                "flatten the value; no key of a schema file needs deep nesting",
            )
        )
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else 0
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if match:
            message += f" (column {match.group(2)})"
        sink.append(
            Diagnostic(
                display,
                line,
                "",
                f"TOML syntax error: {message}",
                "see https://toml.io for the syntax",
            )
        )
        return None
    problems = shape_problems(data)
    for problem in problems:
        sink.append(
            Diagnostic(
                display,
                locate(text, problem.path),
                format_key_path(problem.path),
                problem.message,
                problem.hint,
            )
        )
    if problems:
        return None
    try:
        decl = msgspec.convert(data, SchemaFile, strict=True)
    except msgspec.ValidationError as exc:  # pragma: no cover - shape_problems finds these first
        sink.append(Diagnostic(display, 0, "", f"schema file does not decode: {exc}"))
        return None
    return SourceFile(path, display, text, decl)


def load_files(schemas_dir: Path) -> list[SourceFile]:
    """Every ``*.toml`` under ``schemas_dir``, decoded, in name order.

    Raises :class:`~codegen.errors.SchemaErrors` when there is none, or when
    any file cannot be read, parsed or decoded: shape errors make the later
    checks unreliable, so they are reported on their own.
    """
    sink: list[Diagnostic] = []
    paths = sorted(schemas_dir.glob("*.toml")) if schemas_dir.is_dir() else []
    if not paths:
        raise SchemaErrors(
            [
                Diagnostic(
                    relative_path(schemas_dir),
                    0,
                    "",
                    "no schema files (*.toml) found"
                    if schemas_dir.is_dir()
                    else "schema folder does not exist",
                    "create one file per service; docs/schema.md has an example",
                )
            ]
        )
    files = [f for f in (_load_file(p, sink) for p in paths) if f is not None]
    if sink:
        raise SchemaErrors(sink)
    return files
