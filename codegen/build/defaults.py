"""Field defaults: is a TOML value a valid default for its type, and what value does it give?

The model records the value (see :class:`~codegen.model.FieldModel`); each
back-end spells it its own way. Problems come back as text for the field's
``default`` key.
"""

from __future__ import annotations

from typing import Any

from codegen.contracts.defs import EnumDef, TypeScope
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

__all__ = ["default_value"]


def default_value(expr: TypeExpr, value: Any, scope: TypeScope) -> tuple[object, str | None]:
    """Check a TOML default against its type: (the model's default value, problem)."""
    bad = f"default {value!r} is not a valid {expr}"
    if isinstance(expr, OptionalType):
        return default_value(expr.inner, value, scope)
    if isinstance(expr, ScalarType):
        name = expr.name
        if name == "str":
            return (value, None) if isinstance(value, str) else (None, bad)
        if name == "bool":
            return (value, None) if isinstance(value, bool) else (None, bad)
        if name == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
            return (value, None) if ok else (None, bad)
        if name == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if (ok and value != value) or value in (float("inf"), float("-inf")):
                return None, "default must be a finite number"
            return (float(value), None) if ok else (None, bad)
        if name == "bytes":
            if isinstance(value, str):
                return value, None
            return None, "a bytes default is written as a string"
        text = scalar_text(name, value)
        return (text, None) if text is not None else (None, bad)
    if isinstance(expr, LiteralType):
        if value in expr.values and type(value) in (str, int):
            return value, None
        return None, f"default {value!r} is not one of {list(expr.values)}"
    if isinstance(expr, NamedType):
        found = scope.get(expr.name)
        if isinstance(found, EnumDef):
            if isinstance(value, str) and value in found.values:
                return value, None
            return (
                None,
                f"default {value!r} is not a value of enum {expr.name} ({', '.join(found.values)})",
            )
        return (
            None,
            f"a field of struct type {expr.name} cannot have a default; make it optional[{expr.name}]",
        )
    is_list = isinstance(expr, ListType)
    if not isinstance(value, list if is_list else dict):
        return None, bad
    item = expr.item if isinstance(expr, ListType) else expr.value
    bare = item
    while isinstance(bare, OptionalType):
        bare = bare.inner
    for element in value if isinstance(value, list) else value.values():
        _, problem = default_value(item, element, scope)
        if problem:
            return None, problem
        if isinstance(bare, ListType | DictType):
            return None, f"default {value!r}: only scalar items may have defaults"
    return value, None
