"""Fields: name, wire name, type and default of each field of a message or named struct."""

from __future__ import annotations

import difflib

from codegen.build.defaults import default_value
from codegen.build.names import field_name_problem
from codegen.build.state import ServiceState
from codegen.model import FieldModel
from codegen.schema import FieldSpec, normalize_field
from codegen.types import SCALARS, OptionalType, TypeSyntaxError, named_types_in, parse_type

__all__ = ["build_fields"]

#: Type names from other languages, and what to write instead.
_ALIASES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "double": "float",
    "boolean": "bool",
    "timestamp": "datetime",
    "guid": "uuid",
    "list": "list[T]",
    "array": "list[T]",
    "map": "dict[str, T]",
    "object": "dict[str, T]",
}


def build_fields(
    svc: ServiceState, specs: dict[str, FieldSpec], path: tuple[str, ...]
) -> list[FieldModel]:
    """The fields of one class, in the schema's order; a field with a problem is left out."""
    fields: list[FieldModel] = []
    wire_names: dict[str, str] = {}
    for name, spec in specs.items():
        fpath = path + (name,)
        field = normalize_field(spec)
        problem = field_name_problem(name)
        if problem:
            svc.file.error(
                fpath,
                problem,
                "use a lower_snake_case name; set wire_name to keep another name on the wire",
            )
            continue
        wire = field.wire_name if field.wire_name is not None else name
        if not wire or any(c in wire for c in '\\"') or any(ord(c) < 0x20 for c in wire):
            svc.file.error(
                fpath + ("wire_name",),
                f"wire name {wire!r} is empty or holds a backslash, double quote or control character",
                "JSON field names on the wire must be plain text; choose another wire_name",
            )
            continue
        if wire in wire_names:
            svc.file.error(
                fpath,
                f"wire name {wire!r} is already used by field {wire_names[wire]!r}",
                "each field needs its own wire name",
            )
            continue
        wire_names[wire] = name
        try:
            texpr = parse_type(field.type)
        except TypeSyntaxError as exc:
            svc.file.error(fpath + ("type",) if not isinstance(spec, str) else fpath, str(exc))
            continue
        unknown = [n for n in named_types_in(texpr) if n not in svc.scope]
        if unknown:
            known = sorted(svc.scope)
            alias = _ALIASES.get(unknown[0].lower())
            close = (
                [alias]
                if alias
                else difflib.get_close_matches(unknown[0], [*SCALARS, *known], n=1, cutoff=0.6)
            )
            hint = f"did you mean {close[0]!r}? " if close else ""
            svc.file.error(
                fpath if isinstance(spec, str) else fpath + ("type",),
                f"unknown field type {unknown[0]!r} in {field.type!r}",
                hint + f"declare it under [types.{unknown[0]}] in this file, or use a scalar "
                "(str, int, float, bool, bytes, datetime, date, time, uuid, decimal)"
                + (f"; types declared here: {', '.join(known)}" if known else ""),
            )
            continue
        default: object = None
        if field.has_default:
            default, problem = default_value(texpr, field.default, svc.scope)
            if problem:
                svc.file.error(
                    fpath + ("default",),
                    problem,
                    f"give a default of type {texpr}, or remove it",
                )
                continue
        required = not field.has_default and not isinstance(texpr, OptionalType)
        fields.append(
            FieldModel(name, wire, texpr, required, default, field.doc, svc.file.place(*fpath))
        )
    # msgspec with kw_only accepts any order; keep the schema's order.
    return fields
