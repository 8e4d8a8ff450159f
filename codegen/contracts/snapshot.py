"""The contract snapshot: ``contracts.lock.json``, written by ``toolkit generate``.

One entry per routing key: its kind, owner and contract class, the contract's
fields (wire name, type, required or default) and the named types they refer
to, resolved; plus each consumer's view (subscribers of an event, senders of a
command that write through their own class) with its own fields and types,
and for commands the services that send them.

The file is JSON with sorted keys and two-space indents, so a schema change
shows up as a small, reviewable diff. ``toolkit check --against`` compares two
snapshots (:mod:`codegen.contracts.breaking`); :func:`load_snapshot` reads one back
with precise errors.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from codegen.model import FieldModel, StructModel, SystemModel
from codegen.types import named_types_in, parse_type

__all__ = [
    "FORMAT",
    "SNAPSHOT_FILE",
    "FieldSnap",
    "MessageSnap",
    "Snapshot",
    "SnapshotError",
    "TypeSnap",
    "ViewSnap",
    "build_snapshot",
    "encode_snapshot",
    "load_snapshot",
    "render_snapshot",
]

#: File name of the snapshot inside the output folder.
SNAPSHOT_FILE = "contracts.lock.json"
#: Version of the snapshot layout; bumped on incompatible layout changes.
FORMAT = 1


class FieldSnap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One field. ``default`` is present exactly when ``required`` is false."""

    wire_name: str
    #: the schema's type expression, canonical form (``optional[list[Address]]``)
    type: str
    required: bool
    default: Any = msgspec.UNSET


class TypeSnap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A named type: a struct with fields, or an enum with values."""

    kind: Literal["struct", "enum"]
    fields: dict[str, FieldSnap] = msgspec.field(default_factory=dict)
    values: list[str] = msgspec.field(default_factory=list)


class ViewSnap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A consumer's own class for a routing key."""

    #: "subscriber" (reads an event) or "sender" (writes a command)
    role: Literal["subscriber", "sender"]
    class_: str = msgspec.field(name="class")
    schema: str = ""
    fields: dict[str, FieldSnap] = msgspec.field(default_factory=dict)
    types: dict[str, TypeSnap] = msgspec.field(default_factory=dict)


class MessageSnap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A routing key as its owner declares it, and who else uses it."""

    kind: Literal["command", "event"]
    owner: str
    class_: str = msgspec.field(name="class")
    schema: str = ""
    fields: dict[str, FieldSnap] = msgspec.field(default_factory=dict)
    types: dict[str, TypeSnap] = msgspec.field(default_factory=dict)
    #: consumer service -> its view
    views: dict[str, ViewSnap] = msgspec.field(default_factory=dict)
    #: services that send this command (with or without a view of their own)
    senders: list[str] = msgspec.field(default_factory=list)


class Snapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    comment: str = msgspec.field(default="", name="$comment")
    format: int = FORMAT
    messages: dict[str, MessageSnap] = msgspec.field(default_factory=dict)


class SnapshotError(ValueError):
    """A snapshot that cannot be read; the message names the source and what is wrong."""


# -- building ------------------------------------------------------------------------

_Scope = dict[str, TypeSnap]


def _field(field: FieldModel) -> FieldSnap:
    if field.required:
        return FieldSnap(field.wire_name, str(field.type), True)
    return FieldSnap(field.wire_name, str(field.type), False, field.default)


def _fields(fields: tuple[FieldModel, ...]) -> dict[str, FieldSnap]:
    return {f.name: _field(f) for f in fields}


def _resolve(fields: tuple[FieldModel, ...], scope: _Scope) -> dict[str, TypeSnap]:
    """The named types ``fields`` refer to, directly or through other named types."""
    found: dict[str, TypeSnap] = {}
    pending = [name for f in fields for name in named_types_in(f.type)]
    while pending:
        name = pending.pop()
        if name in found or name not in scope:
            continue
        found[name] = scope[name]
        for sub in found[name].fields.values():
            pending.extend(_named_in(sub.type))
    return found


def _named_in(type_text: str) -> list[str]:
    return named_types_in(parse_type(type_text))


def build_snapshot(system: SystemModel) -> Snapshot:
    """The snapshot of every contract and view in ``system``."""
    scopes: dict[str, _Scope] = {}
    files: dict[str, str] = {}
    senders: dict[str, list[str]] = {}
    for service in system.services:
        scope: _Scope = {
            e.class_name: TypeSnap("enum", values=[value for _, value in e.members])
            for e in service.enums
        }
        for struct in service.structs:
            if struct.role == "type":
                scope[struct.class_name] = TypeSnap("struct", fields=_fields(struct.fields))
        scopes[service.name] = scope
        files[service.name] = service.source_file
        for publisher in service.publishers:
            if publisher.kind == "command":
                senders.setdefault(publisher.routing_key, []).append(service.name)
    views: dict[str, dict[str, ViewSnap]] = {}
    kinds = {m.routing_key: m.kind for m in system.messages}
    for key, service_name, view in system.views:
        role: Literal["subscriber", "sender"] = (
            "sender" if kinds.get(key) == "command" else "subscriber"
        )
        views.setdefault(key, {})[service_name] = _view(
            role, view, files[service_name], scopes[service_name]
        )
    messages = {
        m.routing_key: MessageSnap(
            kind=m.kind,
            owner=m.owner,
            class_=m.contract.class_name,
            schema=files[m.owner],
            fields=_fields(m.contract.fields),
            types=_resolve(m.contract.fields, scopes[m.owner]),
            views=views.get(m.routing_key, {}),
            senders=sorted(senders.get(m.routing_key, [])),
        )
        for m in system.messages
    }
    comment = (
        f"Generated by `toolkit generate` from {system.sources_label}. DO NOT EDIT. "
        "Compare schema versions with `toolkit check --against REF` (docs/compatibility.md)."
    )
    return Snapshot(comment, FORMAT, messages)


def _view(
    role: Literal["subscriber", "sender"], view: StructModel, schema: str, scope: _Scope
) -> ViewSnap:
    return ViewSnap(
        role=role,
        class_=view.class_name,
        schema=schema,
        fields=_fields(view.fields),
        types=_resolve(view.fields, scope),
    )


def encode_snapshot(snapshot: Snapshot) -> str:
    """Stable, diff-friendly JSON: sorted keys, two-space indent, trailing newline."""
    raw = msgspec.json.encode(snapshot, order="sorted")
    return msgspec.json.format(raw, indent=2).decode() + "\n"


def render_snapshot(system: SystemModel) -> str:
    """The text of ``contracts.lock.json`` for ``system``."""
    return encode_snapshot(build_snapshot(system))


# -- reading -------------------------------------------------------------------------

_DECODER = msgspec.json.Decoder(Snapshot)


def load_snapshot(data: bytes | str, source: str) -> Snapshot:
    """Decode a snapshot; raises :class:`SnapshotError` naming ``source`` and the problem."""
    try:
        snapshot = _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise SnapshotError(
            f"{source}: error: not a contract snapshot: {exc}\n"
            "    fix: point at a contracts.lock.json written by `toolkit generate`"
        ) from None
    except msgspec.DecodeError as exc:
        raise SnapshotError(
            f"{source}: error: not valid JSON: {exc}\n"
            "    fix: point at a contracts.lock.json written by `toolkit generate`"
        ) from None
    if snapshot.format != FORMAT:
        raise SnapshotError(
            f"{source}: error: snapshot format {snapshot.format} is not supported "
            f"(this toolkit reads format {FORMAT})\n"
            "    fix: regenerate it with this version of `toolkit generate`"
        )
    return snapshot
