"""Named types (``[types.*]``): enums and structs a service's fields may use."""

from __future__ import annotations

from codegen.build.fields import build_fields
from codegen.build.names import claim_class, enum_member, identifier_problem
from codegen.build.state import ServiceState, field_defs
from codegen.contracts.defs import EnumDef, StructDef
from codegen.model import EnumModel, StructModel
from codegen.types import NamedType, named_types_in

__all__ = ["build_named_types"]


def build_named_types(svc: ServiceState) -> None:
    """``[types.*]``: enums and named structs, into ``svc.enums``, ``svc.type_structs`` and its scope."""
    decl = svc.decl
    # Pass 1: declare names so fields may refer to types declared later.
    for type_name, tdecl in sorted(decl.types.items()):
        path = ("types", type_name)
        if not claim_class(svc, type_name, path):
            continue
        if tdecl.kind == "enum":
            if tdecl.fields:
                svc.file.error(
                    path + ("fields",),
                    "an enum has values, not fields",
                    'remove fields or use kind = "struct"',
                )
            if not tdecl.values:
                svc.file.error(
                    path + ("values",),
                    "an enum needs at least one value",
                    'values = ["a", "b"]',
                )
                continue
            members: list[tuple[str, str]] = []
            seen: dict[str, str] = {}
            for value in tdecl.values:
                member = enum_member(value)
                if identifier_problem(member, "enum member") or member in seen:
                    svc.file.error(
                        path + ("values",),
                        f"enum value {value!r} gives member name {member}, which "
                        + (
                            f"clashes with value {seen[member]!r}"
                            if member in seen
                            else "is not valid"
                        ),
                        "make the values differ in more than case and punctuation",
                    )
                    continue
                seen[member] = value
                members.append((member, value))
            svc.scope[type_name] = EnumDef(type_name, tuple(tdecl.values))
            svc.enums.append(
                EnumModel(type_name, tdecl.description, tuple(members), svc.file.place(*path))
            )
        else:
            if tdecl.values:
                svc.file.error(
                    path + ("values",),
                    "a struct has fields, not values",
                    'remove values or use kind = "enum"',
                )
            svc.scope[type_name] = StructDef(type_name, ())
    # Pass 2: struct fields, now that every name is known.
    structs: dict[str, StructModel] = {}
    for type_name, tdecl in sorted(decl.types.items()):
        if tdecl.kind != "struct" or type_name not in svc.scope:
            continue
        path = ("types", type_name)
        fields = build_fields(svc, tdecl.fields, path + ("fields",))
        svc.scope[type_name] = StructDef(type_name, field_defs(fields), str(svc.file.place(*path)))
        structs[type_name] = StructModel(
            type_name,
            "type",
            "",
            tdecl.description,
            tuple(fields),
            svc.file.place(*path),
        )
    svc.type_structs = _dependency_order(structs)
    _check_finite(svc, structs)


def _check_finite(svc: ServiceState, structs: dict[str, StructModel]) -> None:
    """A struct that needs itself (through required fields) has no finite value: an error.

    Optional, list and dict fields end the recursion (None, empty); struct
    fields cannot have defaults.
    """
    needs = {
        name: [
            (f.name, f.type.name)
            for f in struct.fields
            if f.required and isinstance(f.type, NamedType) and f.type.name in structs
        ]
        for name, struct in structs.items()
    }
    reported: set[str] = set()
    for start in sorted(needs):
        cycle = _path_back(start, needs)
        if cycle is None or reported & {name for name, _ in cycle}:
            continue
        reported |= {name for name, _ in cycle}
        name, field = cycle[0]
        target = cycle[1][0] if len(cycle) > 1 else start
        chain = " -> ".join(f"{n}.{f}" for n, f in cycle) + f" -> {start}"
        svc.file.error(
            ("types", name, "fields", field),
            f"struct {name!r} can never be built: it requires itself ({chain})",
            f"make a field of that chain optional (optional[{target}]) or a list",
        )


def _path_back(start: str, needs: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str]] | None:
    """(struct, field) steps of required fields from ``start`` back to ``start``, if any."""
    stack: list[tuple[str, list[tuple[str, str]]]] = [(start, [])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for field, target in needs[name]:
            step = [*path, (name, field)]
            if target == start:
                return step
            if target not in seen:
                seen.add(target)
                stack.append((target, step))
    return None


def _dependency_order(structs: dict[str, StructModel]) -> list[StructModel]:
    """Named structs so that each comes after the structs its fields use (cycles keep name order)."""
    ordered: list[StructModel] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):
            return
        state[name] = 1
        for field in structs[name].fields:
            for dep in named_types_in(field.type):
                if dep in structs:
                    visit(dep)
        state[name] = 2
        ordered.append(structs[name])

    for name in sorted(structs):
        visit(name)
    return ordered
