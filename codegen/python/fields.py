"""A field of a message class as Python source: its annotation, default and declaration.

The model holds a field's type as a :mod:`codegen.types` expression and its
default as a value; this module spells them for msgspec: ``list[uuid.UUID]``,
``decimal.Decimal("1.5")``, ``msgspec.field(default_factory=list, name="x")``.
"""

from __future__ import annotations

from collections.abc import Mapping

from codegen.model import FieldModel
from codegen.python.pytext import py_bytes, py_str, wrap_assignment
from codegen.types import (
    DictType,
    ListType,
    LiteralType,
    NamedType,
    OptionalType,
    ScalarType,
    TypeExpr,
    scalar_text,
)

__all__ = ["EnumMembers", "annotation", "declaration", "modules_used", "uses_literal"]

#: enum class name -> value -> member name, for the enums a service declares
EnumMembers = Mapping[str, Mapping[str, str]]

_SCALAR_ANNOTATION = {
    "str": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "bytes": "bytes",
    "datetime": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    "uuid": "uuid.UUID",
    "decimal": "decimal.Decimal",
}
#: How a default of a scalar written as text is built from that text.
_FROM_TEXT = {
    "datetime": "datetime.datetime.fromisoformat",
    "date": "datetime.date.fromisoformat",
    "time": "datetime.time.fromisoformat",
    "uuid": "uuid.UUID",
    "decimal": "decimal.Decimal",
}
#: the module each scalar's annotation needs
_SCALAR_MODULE = {name: ctor.split(".")[0] for name, ctor in _FROM_TEXT.items()}


def annotation(expr: TypeExpr) -> str:
    """The Python annotation of a field type: ``dict[str, list[int] | None]``."""
    if isinstance(expr, ScalarType):
        return _SCALAR_ANNOTATION[expr.name]
    if isinstance(expr, NamedType):
        return expr.name
    if isinstance(expr, ListType):
        return f"list[{annotation(expr.item)}]"
    if isinstance(expr, DictType):
        return f"dict[str, {annotation(expr.value)}]"
    if isinstance(expr, OptionalType):
        return f"{annotation(expr.inner)} | None"
    return (
        "Literal["
        + ", ".join(repr(v) if isinstance(v, int) else py_str(v) for v in expr.values)
        + "]"
    )


def _parts(expr: TypeExpr) -> list[TypeExpr]:
    """The expression and every expression nested in it."""
    if isinstance(expr, ListType):
        return [expr, *_parts(expr.item)]
    if isinstance(expr, DictType):
        return [expr, *_parts(expr.value)]
    if isinstance(expr, OptionalType):
        return [expr, *_parts(expr.inner)]
    return [expr]


def modules_used(expr: TypeExpr) -> set[str]:
    """Standard-library modules the annotation (and so any default) refers to."""
    return {
        _SCALAR_MODULE[part.name]
        for part in _parts(expr)
        if isinstance(part, ScalarType) and part.name in _SCALAR_MODULE
    }


def uses_literal(expr: TypeExpr) -> bool:
    return any(isinstance(part, LiteralType) for part in _parts(expr))


def _literal(expr: TypeExpr, value: object, enums: EnumMembers, *, raw: bool) -> str:
    """A default value as a Python expression.

    ``raw``: the value is an item of a list or dict default, as the schema
    file wrote it (not in the model's canonical form).
    """
    if isinstance(expr, OptionalType):
        return _literal(expr.inner, value, enums, raw=raw)
    if isinstance(expr, ScalarType):
        name = expr.name
        if name in _FROM_TEXT:
            text = scalar_text(name, value) if raw else value
            assert isinstance(text, str)
            return f"{_FROM_TEXT[name]}({py_str(text)})"
        if name == "bytes":
            assert isinstance(value, str)
            return py_bytes(value.encode())
        if name == "str":
            assert isinstance(value, str)
            return py_str(value)
        if name == "float":
            assert isinstance(value, int | float)
            return repr(float(value))
        return repr(value)
    if isinstance(expr, LiteralType):
        return py_str(value) if isinstance(value, str) else repr(value)
    if isinstance(expr, NamedType):
        assert isinstance(value, str)
        return f"{expr.name}.{enums[expr.name][value]}"
    if isinstance(value, list):
        assert isinstance(expr, ListType)
        if not value:
            return "msgspec.field(default_factory=list)"
        items = ", ".join(_literal(expr.item, v, enums, raw=True) for v in value)
        return f"msgspec.field(default_factory=lambda: [{items}])"
    assert isinstance(expr, DictType) and isinstance(value, dict)
    if not value:
        return "msgspec.field(default_factory=dict)"
    items = ", ".join(
        f"{py_str(str(k))}: {_literal(expr.value, v, enums, raw=True)}" for k, v in value.items()
    )
    return f"msgspec.field(default_factory=lambda: {{{items}}})"


def _value(field: FieldModel, enums: EnumMembers) -> str | None:
    """What follows ``name: annotation =``, or None when nothing does."""
    expr: str | None = None
    if not field.required:
        expr = (
            "None"
            if field.default is None
            else _literal(field.type, field.default, enums, raw=False)
        )
    if field.wire_name == field.name:
        return expr
    inner = f"name={py_str(field.wire_name)}"
    if expr is None:
        return f"msgspec.field({inner})"
    if expr.startswith("msgspec.field("):
        return expr[:-1] + f", {inner})"
    return f"msgspec.field(default={expr}, {inner})"


def declaration(field: FieldModel, enums: EnumMembers) -> str:
    """The field's line(s) inside a class body, without the first indent."""
    head = f"{field.name}: {annotation(field.type)}"
    value = _value(field, enums)
    if value is None:
        return head
    return wrap_assignment(head, value, "    ")
