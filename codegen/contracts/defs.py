"""Contract definitions as the rules read them, and how rule messages describe them.

:mod:`codegen.contracts.compat` and :mod:`codegen.contracts.breaking` both
judge types against a :data:`TypeScope` (a service's named types, or those a
snapshot recorded) and name what they find the same way: ``enum Level``,
``struct Address``, ``list[int]``; a value set as ``'low', 'high'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from codegen.types import LiteralType, NamedType, TypeExpr

__all__ = [
    "EnumDef",
    "FieldDef",
    "StructDef",
    "TypeScope",
    "closed_values",
    "describe",
    "show_values",
]


class FieldDef(msgspec.Struct, frozen=True):
    name: str
    wire_name: str
    type: TypeExpr
    has_default: bool
    #: where the field is declared (``file:line: key.path``), for messages
    place: str = ""


class StructDef(msgspec.Struct, frozen=True):
    name: str
    fields: tuple[FieldDef, ...]
    place: str = ""


class EnumDef(msgspec.Struct, frozen=True):
    name: str
    values: tuple[str, ...]
    place: str = ""


TypeScope = Mapping[str, StructDef | EnumDef]


def closed_values(expr: TypeExpr, scope: TypeScope) -> tuple[str | int, ...] | None:
    """The closed set of values an enum or literal type may hold, else None."""
    if isinstance(expr, LiteralType):
        return expr.values
    if isinstance(expr, NamedType):
        found = scope.get(expr.name)
        if isinstance(found, EnumDef):
            return found.values
    return None


def describe(expr: TypeExpr, scope: TypeScope) -> str:
    """A type as messages name it: ``enum Level``, ``struct Address``, ``list[int]``."""
    if isinstance(expr, NamedType):
        found = scope.get(expr.name)
        kind = "enum" if isinstance(found, EnumDef) else "type" if found is None else "struct"
        return f"{kind} {expr.name}"
    return str(expr)


def show_values(values: Iterable[str | int]) -> str:
    """Values as messages list them: ``'low', 'high'``."""
    return ", ".join(repr(v) for v in values)
