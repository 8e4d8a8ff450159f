"""The shape check: a parsed TOML document against the schema structs, every problem at once.

``msgspec.convert`` stops at the first problem and names dict keys ``[...]``,
so a misspelled key would hide every other problem of the file and lose the
path (``channels[...].kind``). This walks the document along the structs of
:mod:`codegen.schema` instead -- their fields, types and key names (``class``
for ``class_``) -- and collects each problem with its full key path:

* a key a table does not hold (with the closest known key as a suggestion);
* a required key that is missing;
* a value of the wrong kind (a string where an array or a table belongs);
* a value outside its allowed set (``kind = "pipe"``).

A document with no problem converts cleanly: :mod:`codegen.load` then calls
``msgspec.convert`` (``tests/test_schema_errors.py`` checks that the two agree).
"""

from __future__ import annotations

import datetime
import difflib
import functools
import types
import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from codegen.errors import format_key_path
from codegen.schema import SchemaFile

__all__ = ["ShapeProblem", "shape_problems"]

Path = tuple[str | int, ...]


class ShapeProblem(msgspec.Struct, frozen=True):
    path: Path
    message: str
    hint: str = ""


def shape_problems(document: dict[str, Any]) -> list[ShapeProblem]:
    """Every shape problem of one parsed schema file."""
    found: list[ShapeProblem] = []
    _check(document, SchemaFile, (), found)
    return found


def _check(value: Any, expected: Any, path: Path, found: list[ShapeProblem]) -> None:
    origin = typing.get_origin(expected)
    if origin in (types.UnionType, typing.Union):
        options = [t for t in typing.get_args(expected) if t is not type(None)]
        if len(options) == 1:
            _check(value, options[0], path, found)
        elif isinstance(value, str) and str in options:
            return
        elif isinstance(value, dict):
            _check(value, next(t for t in options if _is_struct(t)), path, found)
        else:
            found.append(
                ShapeProblem(
                    path,
                    f"expected a type string or a table, got {_describe(value)}",
                    f'write either {_key(path)} = "int" or {_key(path)} = {{ type = "int" }}',
                )
            )
    elif _is_struct(expected):
        if isinstance(value, dict):
            _check_table(value, expected, path, found)
        else:
            found.append(
                ShapeProblem(path, f"expected a table, got {_describe(value)}", _table_hint(path))
            )
    elif origin is dict:
        if not isinstance(value, dict):
            found.append(
                ShapeProblem(path, f"expected a table, got {_describe(value)}", _table_hint(path))
            )
            return
        item = typing.get_args(expected)[1]
        for key, entry in value.items():
            _check(entry, item, (*path, key), found)
    elif origin is list:
        item = typing.get_args(expected)[0]
        if not isinstance(value, list):
            found.append(
                ShapeProblem(
                    path,
                    f"expected an array of {_NAMES.get(item, _VALUE)[1]}, got {_describe(value)}",
                    f"write an array, e.g. {_key(path)} = "
                    + _ARRAY_EXAMPLES.get(_key(path), '["..."]'),
                )
            )
            return
        for index, entry in enumerate(value):
            _check(entry, item, (*path, index), found)
    elif origin is typing.Literal:
        allowed = typing.get_args(expected)
        if value not in allowed or not isinstance(value, str):
            choices = " or ".join(f'{_key(path)} = "{a}"' for a in allowed)
            found.append(
                ShapeProblem(
                    path,
                    f"{_key(path)} must be {_one_of(allowed)}, not {_show(value)}",
                    f"write {choices}",
                )
            )
    elif expected is not Any and not _is_instance(value, expected):
        found.append(
            ShapeProblem(
                path,
                f"expected {_NAMES.get(expected, _VALUE)[0]}, got {_describe(value)}",
                f"write each item in quotes: {_key(path)} = "
                + _ARRAY_EXAMPLES.get(_key(path), '["..."]')
                if path and isinstance(path[-1], int)
                else f"write {_key(path)} = {_example(expected)}",
            )
        )


def _check_table(value: dict[str, Any], struct: Any, path: Path, found: list[ShapeProblem]) -> None:
    fields = _fields(struct)
    for key, entry in value.items():
        field = fields.get(key)
        if field is None:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            what = "table" if isinstance(entry, dict) else "key"
            holder = f"[{format_key_path(path)}]" if path else "a schema file"
            found.append(
                ShapeProblem(
                    (*path, key),
                    f"unknown {what} {key!r} {_where(path)}",
                    hint + f"{holder} holds: {', '.join(fields)}",
                )
            )
        else:
            _check(entry, field.type, (*path, key), found)
    for key, field in fields.items():
        if field.required and key not in value:
            what = "table" if _is_struct(field.type) else "key"
            found.append(
                ShapeProblem(
                    (*path, key),
                    f"required {what} {key!r} is missing {_where(path)}",
                    f"add [{key}]; docs/schema.md shows a complete example"
                    if what == "table"
                    else f"add {_key((key,))} = {_example(field.type)}",
                )
            )


@functools.cache
def _fields(struct: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """A struct's fields by TOML key, read once (msgspec evaluates the annotations each time)."""
    return {f.encode_name: f for f in msgspec.structs.fields(struct)}


def _is_struct(expected: Any) -> bool:
    return isinstance(expected, type) and issubclass(expected, msgspec.Struct)


def _is_instance(value: Any, expected: type) -> bool:
    # TOML has no null, and a boolean is not an integer.
    return isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))


#: (a value of the type, values of the type), in TOML's words
_NAMES: dict[Any, tuple[str, str]] = {
    str: ("a string", "strings"),
    bool: ("a boolean", "booleans"),
    int: ("an integer", "integers"),
    float: ("a float", "floats"),
    list: ("an array", "arrays"),
    dict: ("a table", "tables"),
    datetime.datetime: ("a date-time", "date-times"),
    datetime.date: ("a date", "dates"),
    datetime.time: ("a time", "times"),
}

_VALUE = ("a value", "values")
_EXAMPLES: dict[Any, str] = {str: '"..."', bool: "true", int: "5"}
_ARRAY_EXAMPLES = {
    "subscribe": '["user.*"]',
    "include_publishers": '["user_service"]',
    "exclude_publishers": '["user_service"]',
    "propagate": '["tenant", "traceparent"]',
    "values": '["low", "high"]',
}


def _example(expected: Any) -> str:
    if typing.get_origin(expected) is typing.Literal:
        return " or ".join(f'"{a}"' for a in typing.get_args(expected))
    return _EXAMPLES.get(expected, '"..."')


def _describe(value: Any) -> str:
    name = next((n for t, (n, _) in _NAMES.items() if type(value) is t), type(value).__name__)
    if isinstance(value, str | bool | int | float):
        return f"{name} ({_show(value)})"
    return name


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value) if isinstance(value, int | float) else _describe(value)


def _one_of(allowed: Sequence[Any]) -> str:
    quoted = [f'"{a}"' for a in allowed]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _key(path: Path) -> str:
    """The last key of ``path`` (the one being written), for examples."""
    keys = [p for p in path if isinstance(p, str)]
    return format_key_path(keys[-1:]) if keys else "key"


def _where(path: Path) -> str:
    return f"in [{format_key_path(path)}]" if path else "at the top level of the file"


#: top-level tables whose entries are tables of their own: [channels.NAME], [events."key"], ...
_ENTRY_TABLES = frozenset(
    f.encode_name for f in msgspec.structs.fields(SchemaFile) if typing.get_origin(f.type) is dict
)


def _table_hint(path: Path) -> str:
    keys = [p for p in path if isinstance(p, str)]
    if len(keys) == 2 and keys[0] in _ENTRY_TABLES:
        return f"each entry of [{keys[0]}] is a table: [{keys[0]}.NAME] with its keys below it"
    return f"write a table: [{format_key_path(path)}] with its keys below it"
