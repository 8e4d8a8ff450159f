"""Fields: name, wire name, type and default of each field of a message or named struct."""

from __future__ import annotations

import difflib

from codegen.build.defaults import default_value
from codegen.build.names import field_name_problem
from codegen.build.nesting import nesting_fits
from codegen.build.state import ServiceState
from codegen.errors import format_key_path
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
    """The fields of one class (``path``: its table's key path + ``fields``), in the schema's order.

    A field with a problem is reported and left out, and its wire name is
    recorded in ``svc.broken_fields`` so that no later check reports it missing.
    """
    fields: list[FieldModel] = []
    wire_names: dict[str, str] = {}
    for name, spec in specs.items():
        field = _build_field(svc, name, spec, path + (name,), wire_names)
        if field is not None:
            fields.append(field)
            continue
        wire = normalize_field(spec).wire_name
        broken = svc.broken_fields.setdefault(format_key_path(path[:-1]), set())
        broken.add(name if wire is None else wire)
    # msgspec with kw_only accepts any order; keep the schema's order.
    return fields


def _build_field(
    svc: ServiceState,
    name: str,
    spec: FieldSpec,
    fpath: tuple[str, ...],
    wire_names: dict[str, str],
) -> FieldModel | None:
    field = normalize_field(spec)
    # A field written as a bare type string has no ``type`` key to point at.
    type_path = fpath if isinstance(spec, str) else fpath + ("type",)
    problem = field_name_problem(name)
    if problem:
        svc.file.error(
            fpath,
            problem,
            "use a lower_snake_case name; set wire_name to keep another name on the wire",
        )
        return None
    wire = field.wire_name if field.wire_name is not None else name
    if not wire or any(c in wire for c in '\\"') or any(ord(c) < 0x20 for c in wire):
        svc.file.error(
            fpath + ("wire_name",),
            f"wire name {wire!r} is empty or holds a backslash, double quote or control character",
            "JSON field names on the wire must be plain text; choose another wire_name",
        )
        return None
    if wire in wire_names:
        svc.file.error(
            fpath,
            f"wire name {wire!r} is already used by field {wire_names[wire]!r}",
            "each field needs its own wire name",
        )
        return None
    wire_names[wire] = name
    try:
        texpr = parse_type(field.type)
    except TypeSyntaxError as exc:
        svc.file.error(type_path, str(exc))
        return None
    named = named_types_in(texpr)
    if svc.broken_types.intersection(named):
        return None  # the type's own error says why
    unknown = [n for n in named if n not in svc.scope]
    if unknown:
        known = sorted(svc.scope)
        # A misspelt alias ("timestmp") suggests what the alias stands for.
        close = [
            _ALIASES.get(match, match)
            for match in difflib.get_close_matches(
                unknown[0].lower() if unknown[0].lower() in _ALIASES else unknown[0],
                [*SCALARS, *known, *_ALIASES],
                n=1,
                cutoff=0.6,
            )
        ]
        hint = f"did you mean {close[0]!r}? " if close else ""
        svc.file.error(
            type_path,
            f"unknown field type {unknown[0]!r} in {field.type!r}",
            hint + f"declare it under [types.{unknown[0]}] in this file, or use a scalar "
            "(str, int, float, bool, bytes, datetime, date, time, uuid, decimal)"
            + (f"; types declared here: {', '.join(known)}" if known else ""),
        )
        return None
    if not nesting_fits(svc, texpr, type_path):
        return None
    default: object = None
    if field.has_default:
        default, problem = default_value(texpr, field.default, svc.scope)
        if problem:
            svc.file.error(
                fpath + ("default",),
                problem,
                f"give a default of type {texpr}, or remove it",
            )
            return None
    required = not field.has_default and not isinstance(texpr, OptionalType)
    return FieldModel(name, wire, texpr, required, default, field.doc, svc.file.place(*fpath))
