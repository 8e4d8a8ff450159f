"""Compatibility of views, as schema errors: can the reader decode what the writer sends?

The rules themselves live in :mod:`codegen.contracts.compat`; this module
runs them for each subscriber's view (the owner's contract writes, the view
reads) and each sender's view (the view writes, the owner's contract reads),
and reports each problem where the view's author can fix it.
"""

from __future__ import annotations

import re

from codegen.build.state import ServiceState, tainted_types
from codegen.contracts.compat import check_fields, extra_writer_fields
from codegen.contracts.defs import FieldDef, TypeScope
from codegen.model import StructModel
from codegen.types import named_types_in

__all__ = ["Side", "check_compat"]

#: a class taking part in a message: its service, its struct and its fields as compat reads them
Side = tuple[ServiceState, StructModel, tuple[FieldDef, ...]]


def check_compat(
    key: str,
    *,
    writer: Side,
    reader: Side,
    reader_path: tuple[str, ...],
    sender_view: bool = False,
) -> None:
    """Report every way the writer's messages may fail to decode as the reader's class.

    The error goes to the view's file (the view is what its author can
    change), at the view's field; it names both declarations, the
    routing key, the field path and the rule (docs/compatibility.md).
    """
    wsvc, wstruct, wdefs = writer
    rsvc, rstruct, rdefs = reader
    # A field left out (or holding a type left out) for an error reported elsewhere
    # would only be reported again as missing or different: leave it to that error.
    unsure = _unsure(wsvc, wstruct) | _unsure(rsvc, rstruct)
    if unsure:
        wdefs = tuple(d for d in wdefs if d.wire_name not in unsure)
        rdefs = tuple(d for d in rdefs if d.wire_name not in unsure)
    wscope: TypeScope = wsvc.scope
    rscope: TypeScope = rsvc.scope
    problems = check_fields(wdefs, wscope, rdefs, rscope, writer_place=str(wstruct.place))
    kind = "command"
    if sender_view:
        problems += extra_writer_fields(wdefs, rdefs, reader_place=str(rstruct.place))
    else:
        kind = "event"
    view_svc, view_struct = (wsvc, wstruct) if sender_view else (rsvc, rstruct)
    view_fields = {f.wire_name: f for f in view_struct.fields}
    wrole = f"{'view' if sender_view else 'contract'} {wstruct.class_name} of {wsvc.name}"
    rrole = f"{'contract' if sender_view else 'view'} {rstruct.class_name} of {rsvc.name}"
    for problem in problems:
        top = re.split(r"[.\[{]", problem.field, maxsplit=1)[0]
        target = view_fields.get(top)
        path = reader_path + ("fields", target.name) if target else reader_path
        hint = problem.hint
        if sender_view and problem.rule == 1:
            hint = (
                f"add {problem.field!r} to the view (the contract requires it), or send the "
                f'contract class itself: remove class and fields from [sends."{key}"]'
            )
        elif sender_view and problem.reader_type:
            hint = f"declare the view's field as {problem.reader_type}"
        writer_at = problem.writer_place or str(wstruct.place)
        reader_at = problem.reader_place or str(rstruct.place)
        view_svc.file.error(
            path,
            f"{kind} {key!r}, field {problem.field!r}: rule {problem.rule} "
            f"({problem.title}): {problem.message}\n"
            f"    writer: {writer_at} ({wrole})\n"
            f"    reader: {reader_at} ({rrole})",
            f"{hint}; see docs/compatibility.md, rule {problem.rule}",
        )


def _unsure(svc: ServiceState, struct: StructModel) -> set[str]:
    """Wire names of ``struct``'s fields whose checks would echo an error reported elsewhere."""
    unsure = set(svc.broken_fields.get(struct.place.path, ()))
    tainted = tainted_types(svc)
    if tainted:
        unsure.update(
            f.wire_name for f in struct.fields if tainted.intersection(named_types_in(f.type))
        )
    return unsure
