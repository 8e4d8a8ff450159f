"""Nesting: how deep a value of a field's type can go, named structs included.

Compatibility checks, contract diffs and type names recurse into a type as
deep as it goes, so depth is bounded here, before they run: at most
:data:`~codegen.schema.MAX_NESTING` levels, where each ``list``, ``dict``,
``optional`` and named struct is one level (``list[Address]`` is two levels
plus those of Address's fields). The parser bounds a type expression alone;
this adds the structs it holds. Structs that refer to each other (a tree, a
cycle) are each counted once per cycle, as the recursive checks visit them.
"""

from __future__ import annotations

from codegen.build.state import ServiceState
from codegen.contracts.defs import StructDef
from codegen.schema import MAX_NESTING
from codegen.types import DictType, ListType, NamedType, OptionalType, TypeExpr

__all__ = ["check_struct_nesting", "nesting_fits", "strongly_connected"]

_HINT = (
    f"the schema format allows {MAX_NESTING} levels (each list, dict, optional and named "
    "struct is one); flatten the type"
)


def nesting_fits(svc: ServiceState, expr: TypeExpr, path: tuple[str, ...]) -> bool:
    """False (and an error at ``path``) when a field of type ``expr`` nests too deep."""
    levels = _levels(expr, svc, frozenset())
    if levels <= MAX_NESTING:
        return True
    svc.file.error(path, _too_deep(expr, levels), _HINT)
    return False


def check_struct_nesting(svc: ServiceState) -> None:
    """Record how deep each named struct nests; report (once) where one goes too deep.

    A struct that nests too deep joins ``svc.broken_types``, so that what uses
    it is not reported again.
    """
    structs = {n: d for n, d in svc.scope.items() if isinstance(d, StructDef)}
    edges = {
        name: [
            (ref, around) for f in struct.fields for ref, around in _refs(f.type) if ref in structs
        ]
        for name, struct in structs.items()
    }
    for component in strongly_connected({n: [ref for ref, _ in e] for n, e in edges.items()}):
        members = frozenset(component)
        cyclic = len(component) > 1 or any(ref in members for ref, _ in edges[component[0]])
        # A path through a cycle visits each member once, leaving it by one of its edges.
        inside = (
            sum(max((a + 1 for r, a in edges[m] if r in members), default=0) for m in component)
            if cyclic
            else 0
        )
        levels = {
            (m, f.name): inside + _levels(f.type, svc, members)
            for m in component
            for f in structs[m].fields
        }
        depth = max(levels.values(), default=inside)
        for member in component:
            svc.depths[member] = depth
        if depth <= MAX_NESTING:
            continue
        svc.broken_types.update(component)
        if inside > MAX_NESTING:
            shown = ", ".join(component[:5]) + (
                f" and {len(component) - 5} more" if len(component) > 5 else ""
            )
            svc.file.error(
                ("types", component[0]),
                f"structs {shown} refer to each other in a cycle {inside} levels deep "
                f"(more than {MAX_NESTING})",
                _HINT,
            )
            continue
        # Report where the limit is crossed, not again at each struct that holds it.
        for (struct, field), value in levels.items():
            expr = _field_type(structs[struct], field)
            outside = {ref for ref, _ in _refs(expr) if ref not in members}
            if value > MAX_NESTING and not svc.broken_types.intersection(outside):
                svc.file.error(("types", struct, "fields", field), _too_deep(expr, value), _HINT)


def _too_deep(expr: TypeExpr, levels: int) -> str:
    return (
        f"type {expr} nests {levels} levels deep (more than {MAX_NESTING}), counting the "
        "structs it holds"
    )


def _field_type(struct: StructDef, name: str) -> TypeExpr:
    return next(f.type for f in struct.fields if f.name == name)


def _refs(expr: TypeExpr, around: int = 0) -> list[tuple[str, int]]:
    """Named types in ``expr``, each with the number of lists, dicts and optionals around it."""
    if isinstance(expr, NamedType):
        return [(expr.name, around)]
    if isinstance(expr, ListType):
        return _refs(expr.item, around + 1)
    if isinstance(expr, DictType):
        return _refs(expr.value, around + 1)
    if isinstance(expr, OptionalType):
        return _refs(expr.inner, around + 1)
    return []


def _containers(expr: TypeExpr) -> int:
    if isinstance(expr, ListType):
        return 1 + _containers(expr.item)
    if isinstance(expr, DictType):
        return 1 + _containers(expr.value)
    if isinstance(expr, OptionalType):
        return 1 + _containers(expr.inner)
    return 0


def _levels(expr: TypeExpr, svc: ServiceState, members: frozenset[str]) -> int:
    """Levels of ``expr``: its containers, and each struct with its own depth (0 for ``members``)."""
    deepest = _containers(expr)
    for ref, around in _refs(expr):
        if isinstance(svc.scope.get(ref), StructDef):
            inner = 0 if ref in members else svc.depths.get(ref, 0)
            deepest = max(deepest, around + 1 + inner)
    return deepest


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan's, with an explicit stack), each listed after
    every component it refers to."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(graph[root]))]
        while work:
            node, refs = work[-1]
            ref = next(refs, None)
            if ref is not None:
                if ref not in index:
                    index[ref] = low[ref] = len(index)
                    stack.append(ref)
                    on_stack.add(ref)
                    work.append((ref, iter(graph[ref])))
                elif ref in on_stack:
                    low[node] = min(low[node], index[ref])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found
