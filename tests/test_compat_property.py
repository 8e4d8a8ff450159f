"""Property tests: the compatibility checker agrees with msgspec.

Random writer/reader class pairs are built as real msgspec Structs
(``msgspec.defstruct``, ``enum.Enum``, ``Literal``). Whenever the checker
calls a pair compatible, encoded writer instances always decode as the
reader. For known-incompatible constructions (one field of an otherwise
identical pair broken on purpose, at the top or nested in a struct), the
checker reports it and a witness value fails to decode.
"""

from __future__ import annotations

import enum
import itertools
from typing import Any, Literal

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen.contracts.compat import check_fields
from codegen.contracts.defs import EnumDef, FieldDef, StructDef
from codegen.types import (
    DictType,
    ListType,
    LiteralType,
    NamedType,
    OptionalType,
    ScalarType,
    TypeExpr,
)

Scope = dict[str, StructDef | EnumDef]
SCALARS = ("str", "int", "float", "bool")
_PY: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(max_size=4),
    "int": st.integers(-(10**6), 10**6),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "bool": st.booleans(),
}
_counter = itertools.count()
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _name(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


# -- random types ---------------------------------------------------------------------


def gen_type(draw: st.DrawFn, scope: Scope, depth: int) -> TypeExpr:
    choices = ["scalar", "scalar", "scalar", "literal", "enum", "optional"]
    if depth < 2:
        choices += ["list", "dict", "struct"]
    kind = draw(st.sampled_from(choices))
    if kind == "scalar":
        return ScalarType(draw(st.sampled_from(SCALARS)))
    if kind == "literal":
        if draw(st.booleans()):
            return LiteralType(
                tuple(draw(st.lists(st.sampled_from("abcd"), min_size=1, unique=True)))
            )
        return LiteralType(tuple(draw(st.lists(st.integers(0, 4), min_size=1, unique=True))))
    if kind == "enum":
        name = _name("E")
        scope[name] = EnumDef(
            name, tuple(draw(st.lists(st.sampled_from("abcd"), min_size=1, unique=True)))
        )
        return NamedType(name)
    if kind == "optional":
        inner = gen_type(draw, scope, depth + 1)
        return inner if isinstance(inner, OptionalType) else OptionalType(inner)
    if kind == "list":
        return ListType(gen_type(draw, scope, depth + 1))
    if kind == "dict":
        return DictType(gen_type(draw, scope, depth + 1))
    name = _name("S")
    count = draw(st.integers(1, 3))
    scope[name] = StructDef(
        name,
        tuple(
            FieldDef(f"f{i}", f"f{i}", gen_type(draw, scope, depth + 1), False)
            for i in range(count)
        ),
    )
    return NamedType(name)


def derive(draw: st.DrawFn, w: TypeExpr, wscope: Scope, rscope: Scope, depth: int) -> TypeExpr:
    """A reader type for writer type ``w``: usually a compatible reshape, sometimes random."""
    how = draw(st.sampled_from(["same", "widen", "optional", "narrow", "narrow", "random"]))
    if how == "random":
        return gen_type(draw, rscope, depth)
    if how == "narrow":  # usually incompatible: the checker must notice
        if isinstance(w, OptionalType):
            return derive(draw, w.inner, wscope, rscope, depth + 1)
        if w == ScalarType("float"):
            return ScalarType("int")
        if isinstance(w, LiteralType) and len(w.values) > 1:
            return LiteralType(w.values[1:])
        if isinstance(w, NamedType) and isinstance(wscope[w.name], EnumDef):
            values = wscope[w.name].values  # type: ignore[union-attr]
            if len(values) > 1:
                return LiteralType(values[1:])
    if how == "optional" and not isinstance(w, OptionalType):
        return OptionalType(derive(draw, w, wscope, rscope, depth))
    if isinstance(w, OptionalType):
        return OptionalType(derive(draw, w.inner, wscope, rscope, depth + 1))
    if isinstance(w, ListType):
        return ListType(derive(draw, w.item, wscope, rscope, depth + 1))
    if isinstance(w, DictType):
        return DictType(derive(draw, w.value, wscope, rscope, depth + 1))
    if isinstance(w, ScalarType):
        if how == "widen" and w.name == "int":
            return ScalarType("float")
        return w
    if isinstance(w, LiteralType):
        if how == "widen":
            if all(isinstance(v, str) for v in w.values):
                return ScalarType("str")
            return ScalarType("float")
        return w
    found = wscope[w.name]
    if isinstance(found, EnumDef):
        name = _name("RE")
        extra = (
            draw(st.lists(st.sampled_from("wxyz"), unique=True, max_size=2))
            if how == "widen"
            else []
        )
        rscope[name] = EnumDef(
            name, found.values + tuple(v for v in extra if v not in found.values)
        )
        return ScalarType("str") if how == "widen" and draw(st.booleans()) else NamedType(name)
    # A struct: the reader keeps some fields (reshaped), may rename them and add defaults.
    name = _name("RS")
    rscope[name] = StructDef(name, ())
    fields = derive_fields(draw, found.fields, wscope, rscope, depth + 1)
    rscope[name] = StructDef(name, fields)
    return NamedType(name)


def derive_fields(
    draw: st.DrawFn, wfields: tuple[FieldDef, ...], wscope: Scope, rscope: Scope, depth: int
) -> tuple[FieldDef, ...]:
    out: list[FieldDef] = []
    for i, f in enumerate(wfields):
        if draw(st.booleans()) and len(wfields) > 1:
            continue  # the reader skips this field
        out.append(
            FieldDef(f"r{i}", f.wire_name, derive(draw, f.type, wscope, rscope, depth), False)
        )
    if draw(st.booleans()):
        # a reader-only field: optional with a default, or (incompatible) required
        required = draw(st.booleans())
        out.append(FieldDef("extra", "extra", OptionalType(ScalarType("int")), not required))
    return tuple(out)


# -- msgspec classes and values -------------------------------------------------------


class Py:
    """Python types for the named types of one scope."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.cache: dict[str, Any] = {}

    def type(self, expr: TypeExpr) -> Any:
        if isinstance(expr, ScalarType):
            return _PY[expr.name]
        if isinstance(expr, LiteralType):
            return Literal[expr.values]
        if isinstance(expr, OptionalType):
            return self.type(expr.inner) | None
        if isinstance(expr, ListType):
            return list[self.type(expr.item)]  # type: ignore[misc]
        if isinstance(expr, DictType):
            return dict[str, self.type(expr.value)]  # type: ignore[misc]
        if expr.name not in self.cache:
            found = self.scope[expr.name]
            if isinstance(found, EnumDef):
                self.cache[expr.name] = enum.Enum(
                    expr.name, {f"M{i}": v for i, v in enumerate(found.values)}
                )
            else:
                self.cache[expr.name] = struct_class(expr.name, found.fields, self)
        return self.cache[expr.name]


def struct_class(name: str, fields: tuple[FieldDef, ...], py: Py) -> Any:
    spec = [
        (
            f.name,
            py.type(f.type),
            msgspec.field(default=None, name=f.wire_name)
            if f.has_default
            else msgspec.field(name=f.wire_name),
        )
        for f in fields
    ]
    return msgspec.defstruct(name, spec, kw_only=True)


def value(draw: Any, expr: TypeExpr, py: Py) -> Any:
    if isinstance(expr, ScalarType):
        return draw(_VALUES[expr.name])
    if isinstance(expr, LiteralType):
        return draw(st.sampled_from(expr.values))
    if isinstance(expr, OptionalType):
        return None if draw(st.booleans()) else value(draw, expr.inner, py)
    if isinstance(expr, ListType):
        return [value(draw, expr.item, py) for _ in range(draw(st.integers(0, 2)))]
    if isinstance(expr, DictType):
        return {
            draw(st.text(max_size=3)): value(draw, expr.value, py)
            for _ in range(draw(st.integers(0, 2)))
        }
    found = py.scope[expr.name]
    cls = py.type(expr)
    if isinstance(found, EnumDef):
        return cls(draw(st.sampled_from(found.values)))
    return cls(**{f.name: value(draw, f.type, py) for f in found.fields})


def decodes(data: bytes, reader: Any) -> bool:
    try:
        msgspec.json.decode(data, type=reader)
    except msgspec.ValidationError:
        return False
    return True


# -- property 1: compatible pairs always decode ----------------------------------------


@st.composite
def pairs(draw: st.DrawFn) -> tuple[tuple[FieldDef, ...], Scope, tuple[FieldDef, ...], Scope]:
    wscope: Scope = {}
    rscope: Scope = {}
    count = draw(st.integers(1, 3))
    wfields = tuple(
        FieldDef(f"w{i}", f"k{i}", gen_type(draw, wscope, 0), False) for i in range(count)
    )
    rfields = derive_fields(draw, wfields, wscope, rscope, 0)
    return wfields, wscope, rfields, rscope


@FAST
@given(pairs(), st.data())
def test_compatible_pairs_always_decode(pair: Any, data: st.DataObject) -> None:
    wfields, wscope, rfields, rscope = pair
    problems = check_fields(wfields, wscope, rfields, rscope)
    wpy, rpy = Py(wscope), Py(rscope)
    writer = struct_class("Writer", wfields, wpy)
    reader = struct_class("Reader", rfields, rpy)
    for _ in range(4):
        instance = writer(**{f.name: value(data.draw, f.type, wpy) for f in wfields})
        encoded = msgspec.json.encode(instance)
        if not problems:
            assert decodes(encoded, reader), (problems, encoded, rfields)


# -- property 2: known-incompatible constructions are reported, with a witness ---------

#: (name, writer type, reader type, witness value for the writer field as JSON-able data)
Breaker = tuple[str, TypeExpr, TypeExpr, Any]


@st.composite
def breakers(draw: st.DrawFn) -> tuple[Breaker, Scope, Scope]:
    wscope: Scope = {}
    rscope: Scope = {}
    kind = draw(
        st.sampled_from(
            [
                "scalar",
                "float-int",
                "null",
                "enum-narrowed",
                "open-closed",
                "list-scalar",
                "struct-scalar",
                "missing",
            ]
        )
    )
    if kind == "scalar":
        a, b = draw(st.lists(st.sampled_from(SCALARS), min_size=2, max_size=2, unique=True))
        if (a, b) == ("int", "float"):
            a, b = "float", "bool"
        witness = {"str": "x", "int": 7, "float": 1.5, "bool": True}[a]
        return (kind, ScalarType(a), ScalarType(b), witness), wscope, rscope
    if kind == "float-int":
        return (kind, ScalarType("float"), ScalarType("int"), 0.5), wscope, rscope
    if kind == "null":
        inner = ScalarType(draw(st.sampled_from(SCALARS)))
        return (kind, OptionalType(inner), inner, None), wscope, rscope
    if kind == "enum-narrowed":
        values = tuple(draw(st.lists(st.sampled_from("abcd"), min_size=2, unique=True)))
        wscope["E"] = EnumDef("E", values)
        dropped = draw(st.sampled_from(values))
        keep = tuple(v for v in values if v != dropped)
        reader: TypeExpr = LiteralType(keep) if draw(st.booleans()) else NamedType("R")
        rscope["R"] = EnumDef("R", keep)
        return (kind, NamedType("E"), reader, dropped), wscope, rscope
    if kind == "open-closed":
        return (kind, ScalarType("str"), LiteralType(("a", "b")), "zzz"), wscope, rscope
    if kind == "list-scalar":
        item = ScalarType(draw(st.sampled_from(SCALARS)))
        return (kind, ListType(item), item, []), wscope, rscope
    if kind == "struct-scalar":
        wscope["S"] = StructDef("S", (FieldDef("a", "a", ScalarType("int"), False),))
        return (kind, NamedType("S"), ScalarType("str"), {"a": 1}), wscope, rscope
    return (kind, ScalarType("int"), ScalarType("int"), 1), wscope, rscope


@FAST
@given(breakers(), st.booleans())
def test_known_incompatible_pairs_are_reported_with_a_witness(case: Any, nested: bool) -> None:
    (kind, wtype, rtype, witness), wscope, rscope = case
    wfield = FieldDef("x", "x", wtype, False)
    rfield = FieldDef("x", "x" if kind != "missing" else "y", rtype, False)
    wfields: tuple[FieldDef, ...] = (FieldDef("id", "id", ScalarType("int"), False), wfield)
    rfields: tuple[FieldDef, ...] = (FieldDef("id", "id", ScalarType("int"), False), rfield)
    payload: dict[str, Any] = {"id": 1, "x": witness}
    if nested:  # the same break, one struct down
        wscope["Outer"] = StructDef("Outer", wfields)
        rscope["ROuter"] = StructDef("ROuter", rfields)
        wfields = (FieldDef("o", "o", NamedType("Outer"), False),)
        rfields = (FieldDef("o", "o", NamedType("ROuter"), False),)
        payload = {"o": payload}
    problems = check_fields(wfields, wscope, rfields, rscope)
    assert problems, (kind, wtype, rtype)
    assert problems[0].field == ("o." if nested else "") + rfield.wire_name
    reader = struct_class("Reader", rfields, Py(rscope))
    assert not decodes(msgspec.json.encode(payload), reader)
