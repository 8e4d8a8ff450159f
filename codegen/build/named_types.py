"""Named types (``[types.*]``): enums and structs a service's fields may use."""

from __future__ import annotations

from codegen.build.fields import build_fields
from codegen.build.names import claim_class, enum_member, identifier_problem
from codegen.build.nesting import check_struct_nesting, strongly_connected
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
            svc.broken_types.add(type_name)
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
                svc.broken_types.add(type_name)
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
    check_struct_nesting(svc)
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
    for cycle in _required_cycles(needs):
        if svc.broken_types.intersection(n for n, _ in cycle):
            continue  # already reported (a cycle too deep to nest): the cause once
        name, field = cycle[0]
        target = cycle[1][0] if len(cycle) > 1 else name
        steps = [f"{n}.{f}" for n, f in cycle]
        if len(steps) > 6:
            steps[3:-2] = [f"... {len(steps) - 5} more ..."]
        chain = " -> ".join(steps) + f" -> {name}"
        svc.file.error(
            ("types", name, "fields", field),
            f"struct {name!r} can never be built: it requires itself ({chain})",
            f"make a field of that chain optional (optional[{target}]) or a list",
        )


def _required_cycles(needs: dict[str, list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """One cycle of (struct, field) steps per group of structs that require each other.

    Linear in the size of the graph (a file may chain thousands of structs):
    the strongly connected components, then one path back to each group's
    first struct by breadth-first search.
    """
    groups = strongly_connected({name: [t for _, t in edges] for name, edges in needs.items()})
    return [
        _cycle_through(group[0], set(group), needs)
        for group in sorted(groups)
        if len(group) > 1 or any(t == group[0] for _, t in needs[group[0]])
    ]


def _cycle_through(
    start: str, group: set[str], needs: dict[str, list[tuple[str, str]]]
) -> list[tuple[str, str]]:
    """The shortest (struct, field) steps from ``start`` back to itself inside ``group``."""
    came_from: dict[str, tuple[str, str]] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for name in frontier:
            for field, target in needs[name]:
                if target not in group or target in came_from:
                    continue
                came_from[target] = (name, field)
                if target == start:
                    steps: list[tuple[str, str]] = []
                    node = start
                    while True:
                        prev, via = came_from[node]
                        steps.append((prev, via))
                        node = prev
                        if node == start:
                            return steps[::-1]
                following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start!r}")  # a strongly connected group has one


def _dependency_order(structs: dict[str, StructModel]) -> list[StructModel]:
    """Named structs so that each comes after the structs its fields use (cycles keep name order).

    Depth-first with an explicit stack: a chain of structs may be as long as a
    file makes it, deeper than Python's recursion limit.
    """
    ordered: list[StructModel] = []
    seen: set[str] = set()
    for root in sorted(structs):
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(_struct_deps(structs[root], structs)))]
        while stack:
            name, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                ordered.append(structs[name])
            elif dep not in seen:
                seen.add(dep)
                stack.append((dep, iter(_struct_deps(structs[dep], structs))))
    return ordered


def _struct_deps(struct: StructModel, structs: dict[str, StructModel]) -> list[str]:
    return [dep for field in struct.fields for dep in named_types_in(field.type) if dep in structs]
