"""The schema file format, as typed msgspec Structs.

A schema file is TOML; ``tomllib`` parses it, :mod:`codegen.shape` checks
the result against these structs (every shape error -- a string where a
table belongs, an unknown key -- with its full key path) and
``msgspec.convert`` decodes it into :class:`SchemaFile`. Semantic checks
(unknown types, clashes between files) happen in :mod:`codegen.build`.
:func:`schema_file_json_schema` derives the format's JSON Schema from these
structs, for editors (``toolkit schema-json``).

Field names here are the TOML keys users write; ``rename`` maps the few that
are Python keywords (``class``) or that read better with dashes.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec

__all__ = [
    "MAX_NESTING",
    "ChannelDecl",
    "CommandDecl",
    "EventDecl",
    "FieldDecl",
    "SchemaFile",
    "SendDecl",
    "ServiceDecl",
    "SubscribeDecl",
    "TypeDecl",
    "normalize_field",
    "schema_file_json_schema",
]

_NO_DEFAULT: Any = msgspec.UNSET

#: How deep a schema file may nest: arrays and inline tables in its TOML, and
#: ``list[...]``, ``dict[str, ...]`` and ``optional[...]`` in a type expression.
#: Real schemas stay far below it; the checks, not Python's recursion limit,
#: turn a pathological file into an error.
MAX_NESTING = 32


class FieldDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One field: ``name = "type"`` or ``name = { type = "...", default = ..., doc = "..." }``."""

    type: str
    doc: str = ""
    default: Any = msgspec.field(default_factory=lambda: msgspec.UNSET)
    wire_name: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not msgspec.UNSET


FieldSpec = str | FieldDecl


class ServiceDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The service: its name, and the metadata keys its handlers carry on.

    ``propagate``: metadata keys (a tenant, a locale, trace context) that a
    message sent from inside one of its handlers takes over from the message
    being handled.
    """

    name: str
    description: str = ""
    propagate: list[str] = msgspec.field(default_factory=list)


class ChannelDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A channel this service consumes.

    ``queue``: this service is its only consumer group; ``stream``: several
    services may consume it, each in its own group, each seeing everything.
    """

    kind: Literal["queue", "stream"]
    description: str = ""
    commands: bool = False
    subscribe: list[str] = msgspec.field(default_factory=list)
    include_publishers: list[str] | None = None
    exclude_publishers: list[str] | None = None


class TypeDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A named type: ``kind = "struct"`` with fields, or ``kind = "enum"`` with values."""

    kind: Literal["struct", "enum"]
    description: str = ""
    fields: dict[str, FieldSpec] = msgspec.field(default_factory=dict)
    values: list[str] = msgspec.field(default_factory=list)


class CommandDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A command this service accepts; it owns the contract."""

    class_: str = msgspec.field(name="class")
    description: str = ""
    fields: dict[str, FieldSpec] = msgspec.field(default_factory=dict)
    #: the priority (0 to 9) its messages get unless a send says otherwise
    priority: int = 0
    #: a window (``90s``, ``30m``, ``24h``, ``7d``): a message id this service handled
    #: within it is acknowledged without calling the handler again
    deduplicate: str | None = None


class EventDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An event this service publishes; it owns the contract."""

    class_: str = msgspec.field(name="class")
    description: str = ""
    fields: dict[str, FieldSpec] = msgspec.field(default_factory=dict)
    #: the priority (0 to 9) its messages get unless a send says otherwise
    priority: int = 0


class SubscribeDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An event this service handles, read through its own view class."""

    class_: str = msgspec.field(name="class")
    description: str = ""
    fields: dict[str, FieldSpec] = msgspec.field(default_factory=dict)
    #: a window (``90s``, ``30m``, ``24h``, ``7d``): a message id this service handled
    #: within it is acknowledged without calling the handler again
    deduplicate: str | None = None


class SendDecl(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A command this service sends to another service.

    Without ``class`` the owner's contract class is used as it is; with it,
    this service writes through its own view (a subset of the contract).
    """

    service: str
    class_: str | None = msgspec.field(default=None, name="class")
    description: str = ""
    fields: dict[str, FieldSpec] = msgspec.field(default_factory=dict)


class SchemaFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One service's schema file."""

    service: ServiceDecl
    channels: dict[str, ChannelDecl] = msgspec.field(default_factory=dict)
    types: dict[str, TypeDecl] = msgspec.field(default_factory=dict)
    commands: dict[str, CommandDecl] = msgspec.field(default_factory=dict)
    events: dict[str, EventDecl] = msgspec.field(default_factory=dict)
    subscribes: dict[str, SubscribeDecl] = msgspec.field(default_factory=dict)
    sends: dict[str, SendDecl] = msgspec.field(default_factory=dict)


def normalize_field(spec: FieldSpec) -> FieldDecl:
    return FieldDecl(type=spec) if isinstance(spec, str) else spec


def schema_file_json_schema() -> str:
    """The JSON Schema of the schema file format, derived from :class:`SchemaFile`."""
    (schema,), components = msgspec.json.schema_components(
        [SchemaFile], ref_template="#/$defs/{name}"
    )
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://toolkit.invalid/schema-file.json",
        "title": "toolkit schema file",
        "description": "One service's schema file: its channels, messages, views and types (docs/schema.md).",
        **schema,
        "$defs": components,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
