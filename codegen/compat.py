"""Compatibility between a writer's class and a reader's class for one routing key.

The rules (numbered as in ``docs/compatibility.md``):

1. Every required reader field exists in the writer's class (matched by wire
   name) with a compatible type.
2. A reader field absent from the writer's class has a default.
3. Compatible types: identical types; int read as float; any value read as
   optional; a writer's optional value only into an optional reader; lists
   and dicts element by element; named structs field by field (these rules,
   recursively); enums and literals where the reader accepts every value the
   writer may send (an enum or string literal may always be read as str).
4. Extra writer fields are ignored by the reader.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from codegen.types import (
    DictType,
    ListType,
    LiteralType,
    NamedType,
    OptionalType,
    ScalarType,
    TypeExpr,
)

__all__ = [
    "EnumDef",
    "FieldDef",
    "Incompatibility",
    "StructDef",
    "TypeScope",
    "check_fields",
    "check_type",
]


class FieldDef(msgspec.Struct, frozen=True):
    name: str
    wire_name: str
    type: TypeExpr
    has_default: bool


class StructDef(msgspec.Struct, frozen=True):
    name: str
    fields: tuple[FieldDef, ...]


class EnumDef(msgspec.Struct, frozen=True):
    name: str
    values: tuple[str, ...]


TypeScope = Mapping[str, StructDef | EnumDef]


class Incompatibility(msgspec.Struct, frozen=True):
    #: dotted wire path of the field, e.g. ``billing_address.city``
    field: str
    rule: int
    message: str


def _values(expr: TypeExpr, scope: TypeScope) -> tuple[str | int, ...] | None:
    """The closed set of values an enum or literal type may hold, else None."""
    if isinstance(expr, LiteralType):
        return expr.values
    if isinstance(expr, NamedType):
        found = scope.get(expr.name)
        if isinstance(found, EnumDef):
            return found.values
    return None


def _describe(expr: TypeExpr, scope: TypeScope) -> str:
    if isinstance(expr, NamedType):
        found = scope.get(expr.name)
        if isinstance(found, EnumDef):
            return f"enum {expr.name}"
        return f"struct {expr.name}"
    return str(expr)


def check_type(
    writer: TypeExpr,
    writer_scope: TypeScope,
    reader: TypeExpr,
    reader_scope: TypeScope,
    path: str,
    _seen: frozenset[tuple[str, str]] = frozenset(),
) -> list[Incompatibility]:
    """Why values of ``writer`` may fail to decode as ``reader`` (empty when they never do)."""

    def fail(message: str) -> list[Incompatibility]:
        return [Incompatibility(path, 3, message)]

    if isinstance(reader, OptionalType):
        inner_writer = writer.inner if isinstance(writer, OptionalType) else writer
        return check_type(inner_writer, writer_scope, reader.inner, reader_scope, path, _seen)
    if isinstance(writer, OptionalType):
        return fail(
            f"the writer may send null ({_describe(writer, writer_scope)}) but the reader's "
            f"{_describe(reader, reader_scope)} is not optional"
        )
    writer_values = _values(writer, writer_scope)
    reader_values = _values(reader, reader_scope)
    if reader_values is not None:
        if writer_values is None:
            return fail(
                f"the reader accepts only {sorted(map(str, reader_values))} but the writer's "
                f"{_describe(writer, writer_scope)} may send any value"
            )
        missing = [v for v in writer_values if v not in reader_values]
        if missing:
            return fail(
                f"the writer may send {sorted(map(str, missing))} which the reader's "
                f"{_describe(reader, reader_scope)} does not accept"
            )
        return []
    if writer_values is not None:
        if reader == ScalarType("str") and all(isinstance(v, str) for v in writer_values):
            return []
        if reader == ScalarType("int") and all(isinstance(v, int) for v in writer_values):
            return []
        return fail(
            f"{_describe(writer, writer_scope)} cannot be read as {_describe(reader, reader_scope)}"
        )
    if isinstance(reader, ScalarType):
        if writer == reader:
            return []
        if reader.name == "float" and writer == ScalarType("int"):
            return []
        return fail(f"{_describe(writer, writer_scope)} cannot be read as {reader.name}")
    if isinstance(reader, ListType):
        if not isinstance(writer, ListType):
            return fail(f"{_describe(writer, writer_scope)} cannot be read as {reader}")
        return check_type(writer.item, writer_scope, reader.item, reader_scope, path + "[]", _seen)
    if isinstance(reader, DictType):
        if not isinstance(writer, DictType):
            return fail(f"{_describe(writer, writer_scope)} cannot be read as {reader}")
        return check_type(
            writer.value, writer_scope, reader.value, reader_scope, path + "{}", _seen
        )
    assert isinstance(reader, NamedType)
    reader_def = reader_scope.get(reader.name)
    writer_def = writer_scope.get(writer.name) if isinstance(writer, NamedType) else None
    if not isinstance(reader_def, StructDef) or not isinstance(writer_def, StructDef):
        return fail(
            f"{_describe(writer, writer_scope)} cannot be read as {_describe(reader, reader_scope)}"
        )
    pair = (writer_def.name, reader_def.name)
    if pair in _seen:
        return []
    return check_fields(
        writer_def.fields, writer_scope, reader_def.fields, reader_scope, path + ".", _seen | {pair}
    )


def check_fields(
    writer_fields: tuple[FieldDef, ...],
    writer_scope: TypeScope,
    reader_fields: tuple[FieldDef, ...],
    reader_scope: TypeScope,
    prefix: str = "",
    _seen: frozenset[tuple[str, str]] = frozenset(),
) -> list[Incompatibility]:
    """Rules 1 and 2 for every reader field, and rule 3 for each matched pair."""
    by_wire = {f.wire_name: f for f in writer_fields}
    problems: list[Incompatibility] = []
    for field in reader_fields:
        path = prefix + field.wire_name
        source = by_wire.get(field.wire_name)
        if source is None:
            if not field.has_default and not isinstance(field.type, OptionalType):
                problems.append(
                    Incompatibility(
                        path,
                        2,
                        f"the reader requires field {field.wire_name!r} but the writer has no such field; "
                        'give it a default, or read an existing field (wire_name = "...")',
                    )
                )
            elif not field.has_default:
                problems.append(
                    Incompatibility(
                        path,
                        2,
                        f"field {field.wire_name!r} is not in the writer's class; give it a default "
                        "(an optional field without a default is still required on the wire)",
                    )
                )
            continue
        problems.extend(
            check_type(source.type, writer_scope, field.type, reader_scope, path, _seen)
        )
    return problems
