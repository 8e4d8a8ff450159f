"""A field of a message class as Python source: its annotation, default and declaration.

The model holds a field's type as a :mod:`codegen.types` expression and its
default as a value; this module spells them for msgspec: ``list[uuid.UUID]``,
``decimal.Decimal("1.5")``, ``msgspec.field(default_factory=list, name="x")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

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

__all__ = [
    "BUILTIN_TYPES",
    "EnumMembers",
    "Names",
    "annotation",
    "builtins_used",
    "declaration",
    "modules_used",
    "spelling",
    "uses_literal",
]

#: enum class name -> value -> member name, for the enums a service declares
EnumMembers = Mapping[str, Mapping[str, str]]

#: The builtins a class body of messages.py names (annotations, default factories).
BUILTIN_TYPES = frozenset({"str", "int", "float", "bool", "bytes", "list", "dict"})
#: The modules it names: ``(module, attribute)`` of each scalar's annotation.
_SCALAR_CLASS = {
    "datetime": ("datetime", "datetime"),
    "date": ("datetime", "date"),
    "time": ("datetime", "time"),
    "uuid": ("uuid", "UUID"),
    "decimal": ("decimal", "Decimal"),
}
#: How a default of a scalar written as text is built from that text.
_FROM_TEXT_METHOD = dict.fromkeys(("datetime", "date", "time"), ".fromisoformat")
#: every name a class body may use that a field could shadow
_SHADOWABLE = BUILTIN_TYPES | {"msgspec"} | {m for m, _ in _SCALAR_CLASS.values()}


def spelling(field_names: Iterable[str]) -> dict[str, str]:
    """How a messages module whose classes have ``field_names`` spells the names it uses.

    A field with a default binds its name in the class body, and mypy reads
    every field so: a field named ``uuid``, ``int`` or ``msgspec`` would shadow
    the module or builtin for the fields after it. Such names are spelled
    through private aliases instead (``_uuid.UUID``, ``_builtins.int``), which no
    field can take: field names never start with an underscore. Returns
    name -> spelling for the shadowed names only; other names stay as they are.
    """
    return {
        name: f"_builtins.{name}" if name in BUILTIN_TYPES else f"_{name}"
        for name in sorted(set(field_names) & _SHADOWABLE)
    }


def _class(scalar: str, spelled: Mapping[str, str]) -> str:
    module, attribute = _SCALAR_CLASS[scalar]
    return f"{spelled.get(module, module)}.{attribute}"


def annotation(expr: TypeExpr, spelled: Mapping[str, str]) -> str:
    """The Python annotation of a field type: ``dict[str, list[int] | None]``."""
    if isinstance(expr, ScalarType):
        if expr.name in _SCALAR_CLASS:
            return _class(expr.name, spelled)
        return spelled.get(expr.name, expr.name)
    if isinstance(expr, NamedType):
        return expr.name
    if isinstance(expr, ListType):
        return f"{spelled.get('list', 'list')}[{annotation(expr.item, spelled)}]"
    if isinstance(expr, DictType):
        key = spelled.get("str", "str")
        return f"{spelled.get('dict', 'dict')}[{key}, {annotation(expr.value, spelled)}]"
    if isinstance(expr, OptionalType):
        return f"{annotation(expr.inner, spelled)} | None"
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
        _SCALAR_CLASS[part.name][0]
        for part in _parts(expr)
        if isinstance(part, ScalarType) and part.name in _SCALAR_CLASS
    }


def builtins_used(expr: TypeExpr) -> set[str]:
    """The builtins (:data:`BUILTIN_TYPES`) the annotation (and so any default) names."""
    used: set[str] = set()
    for part in _parts(expr):
        if isinstance(part, ScalarType) and part.name in BUILTIN_TYPES:
            used.add(part.name)
        elif isinstance(part, ListType):
            used.add("list")
        elif isinstance(part, DictType):
            used |= {"dict", "str"}
    return used


def uses_literal(expr: TypeExpr) -> bool:
    return any(isinstance(part, LiteralType) for part in _parts(expr))


class Names(msgspec.Struct, frozen=True):
    """How one messages module names things in its class bodies."""

    #: the enums it declares: class name -> value -> member name
    enums: EnumMembers
    #: the names a field shadows, and their private spelling (:func:`spelling`)
    spelled: Mapping[str, str]

    def __call__(self, name: str) -> str:
        return self.spelled.get(name, name)


def _literal(expr: TypeExpr, value: object, names: Names, *, raw: bool) -> str:
    """A default value as a Python expression.

    ``raw``: the value is an item of a list or dict default, as the schema
    file wrote it (not in the model's canonical form).
    """
    if isinstance(expr, OptionalType):
        return _literal(expr.inner, value, names, raw=raw)
    if isinstance(expr, ScalarType):
        name = expr.name
        if name in _SCALAR_CLASS:
            text = scalar_text(name, value) if raw else value
            assert isinstance(text, str)
            build = _class(name, names.spelled) + _FROM_TEXT_METHOD.get(name, "")
            return f"{build}({py_str(text)})"
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
        return f"{expr.name}.{names.enums[expr.name][value]}"
    field = f"{names('msgspec')}.field"
    if isinstance(value, list):
        assert isinstance(expr, ListType)
        if not value:
            return f"{field}(default_factory={names('list')})"
        items = ", ".join(_literal(expr.item, v, names, raw=True) for v in value)
        return f"{field}(default_factory=lambda: [{items}])"
    assert isinstance(expr, DictType) and isinstance(value, dict)
    if not value:
        return f"{field}(default_factory={names('dict')})"
    items = ", ".join(
        f"{py_str(str(k))}: {_literal(expr.value, v, names, raw=True)}" for k, v in value.items()
    )
    return f"{field}(default_factory=lambda: {{{items}}})"


def _value(field: FieldModel, names: Names) -> str | None:
    """What follows ``name: annotation =``, or None when nothing does."""
    expr: str | None = None
    if not field.required:
        expr = (
            "None"
            if field.default is None
            else _literal(field.type, field.default, names, raw=False)
        )
    if field.wire_name == field.name:
        return expr
    call = f"{names('msgspec')}.field("
    inner = f"name={py_str(field.wire_name)}"
    if expr is None:
        return f"{call}{inner})"
    if expr.startswith(call):
        return expr[:-1] + f", {inner})"
    return f"{call}default={expr}, {inner})"


def declaration(field: FieldModel, names: Names) -> str:
    """The field's line(s) inside a class body, without the first indent."""
    head = f"{field.name}: {annotation(field.type, names.spelled)}"
    value = _value(field, names)
    if value is None:
        return head
    return wrap_assignment(head, value, "    ")
