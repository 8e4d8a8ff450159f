"""Stage 1, load: schema files (TOML) -> :class:`~codegen.schema.SchemaFile` structs, with locations.

``tomllib`` parses each file and ``msgspec.convert`` decodes it into the
typed schema format, so a syntax or shape error (a string where a table
belongs, an unknown key) is reported with file, line and key path. A
:class:`SourceFile` keeps the text, so that later stages can point at any
key of it (:func:`~codegen.errors.locate`) and collect their diagnostics.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

import msgspec

from codegen.errors import Diagnostic, SchemaErrors, format_key_path, locate
from codegen.model import Place
from codegen.schema import SchemaFile
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
        keys = tuple(path)
        self.diagnostics.append(
            Diagnostic(self.display, locate(self.text, keys), format_key_path(keys), message, hint)
        )


_MSGSPEC_PATH = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]|\['((?:[^'\\]|\\.)*)'\]""")


def _parse_msgspec_path(text: str) -> list[str | int]:
    path: list[str | int] = []
    for match in _MSGSPEC_PATH.finditer(text):
        name, index, quoted = match.groups()
        if name is not None:
            path.append(name)
        elif index is not None:
            path.append(int(index))
        else:
            path.append(quoted.replace("\\'", "'"))
    return path


_SHAPE_HINTS = {
    "unknown field": "check the spelling; docs/schema.md lists every key a table may hold",
    "missing required field": "add the key; docs/schema.md shows a complete example",
    "Expected `str | object`": 'write either a type string (name = "int") or a table (name = { type = "int" })',
    "Expected `array`": 'write a list, e.g. ["user.*"]',
    "Invalid enum value": 'use kind = "queue" or kind = "stream" (channels), "struct" or "enum" (types)',
}


def _load_file(path: Path, sink: list[Diagnostic]) -> SourceFile | None:
    display = relative_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        sink.append(Diagnostic(display, 0, "", f"cannot read schema file: {exc}"))
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
    try:
        decl = msgspec.convert(data, SchemaFile, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raw_path = ""
        if " - at `$" in message:
            message, raw_path = message.split(" - at `$", 1)
            raw_path = raw_path.rstrip("`")
        keys = _parse_msgspec_path(raw_path)
        match = re.search(r"unknown field `([^`]+)`", message)
        if match:
            keys.append(match.group(1))
        hint = next((h for k, h in _SHAPE_HINTS.items() if k in message), "")
        sink.append(Diagnostic(display, locate(text, keys), format_key_path(keys), message, hint))
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
