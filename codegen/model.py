"""The frozen model of the validated schemas, as plain data: what every output is made of.

It holds what the schemas declare and what validation derived from them:
names the generated code uses (class, enum member and method names, checked
for clashes), types as :mod:`codegen.types` expressions, defaults as values,
descriptions as text, and the service map. How an output spells them
(Python literals, docstrings, annotations, import lines; JSON Schemas) is
the business of its back-end: :mod:`codegen.python`, :mod:`codegen.system`,
:mod:`codegen.contracts.snapshot`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from codegen.errors import Diagnostic
from codegen.types import TypeExpr
from toolkit.routing import ChannelSpec, EventRoute

__all__ = [
    "EnumModel",
    "FieldModel",
    "ForeignClass",
    "HandlerMethod",
    "MessageModel",
    "Place",
    "PublisherMethod",
    "ServiceModel",
    "StructModel",
    "SystemModel",
]


class Place(msgspec.Struct, frozen=True):
    """Where something was declared: schema file, line, TOML key path."""

    file: str
    line: int
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}" if self.line else f"{self.file}: {self.path}"


class FieldModel(msgspec.Struct, frozen=True):
    name: str
    wire_name: str
    type: TypeExpr
    #: False when the field may be missing on the wire: it has a default, or is optional
    required: bool
    #: the default as plain data, None when required (and for an optional field without
    #: one). Scalars in canonical form: a float as float, bytes as the text they
    #: encode, datetime/date/time as ISO text, uuid and decimal as text; an enum as
    #: its value. Lists and dicts as the schema file writes them (the snapshot
    #: records them so).
    default: object
    #: the field's description
    doc: str
    place: Place


class StructModel(msgspec.Struct, frozen=True):
    class_name: str
    #: "contract" (owned), "view" (a consumer's or sender's own class), or "type" (named struct)
    role: Literal["contract", "view", "type"]
    routing_key: str
    #: the description, then for a contract or view a note on what it is
    doc: str
    fields: tuple[FieldModel, ...]
    place: Place


class EnumModel(msgspec.Struct, frozen=True):
    class_name: str
    doc: str
    #: (member name, value)
    members: tuple[tuple[str, str], ...]
    place: Place


class MessageModel(msgspec.Struct, frozen=True):
    """A routing key as its owner declares it."""

    routing_key: str
    kind: Literal["command", "event"]
    owner: str
    contract: StructModel
    #: the priority (0 to 9) its messages get unless a send says otherwise
    priority: int = 0


class HandlerMethod(msgspec.Struct, frozen=True):
    method_name: str
    routing_key: str
    kind: Literal["command", "event"]
    class_name: str
    doc: str
    #: seconds: the deduplication window of ``deduplicate`` in its table; None without one
    deduplicate: float | None = None


class ForeignClass(msgspec.Struct, frozen=True):
    """Another service's class, used as it is: the contract of a command sent without a view."""

    service: str
    class_name: str


class PublisherMethod(msgspec.Struct, frozen=True):
    method_name: str
    routing_key: str
    kind: Literal["command", "event"]
    #: the class as this service names it (another service's class may get an alias)
    class_name: str
    #: commands only
    target_service: str
    doc: str
    #: set when ``class_name`` names another service's class
    foreign: ForeignClass | None = None
    #: the owner's default priority for the key (0 when its schema gives none)
    priority: int = 0


class ServiceModel(msgspec.Struct, frozen=True):
    name: str
    description: str
    source_file: str
    source_hash: str
    #: Python class-name prefix: ``ticket_service`` -> ``TicketService``
    class_prefix: str
    enums: tuple[EnumModel, ...]
    #: named struct types first (dependency order), then contracts, then views
    structs: tuple[StructModel, ...]
    handlers: tuple[HandlerMethod, ...]
    publishers: tuple[PublisherMethod, ...]
    channels: tuple[str, ...]
    #: metadata keys its handlers carry on to what they send (``[service] propagate``)
    propagate: tuple[str, ...] = ()


class SystemModel(msgspec.Struct, frozen=True):
    package: str
    services: tuple[ServiceModel, ...]
    channels: tuple[ChannelSpec, ...]
    #: target service -> channel
    command_routes: tuple[tuple[str, str], ...]
    #: sorted by channel, then subscriber; match them with ``EventRoute.matches``
    #: or ``toolkit.routing.event_channels``, the runtime's own rules
    event_routes: tuple[EventRoute, ...]
    messages: tuple[MessageModel, ...]
    #: consumer views per routing key: (routing key, service, view struct)
    views: tuple[tuple[str, str, StructModel], ...]
    #: the schema files, as shown in headers and errors
    source_files: tuple[str, ...]
    #: sha256 over every source file, for the headers of system-wide files
    sources_hash: str
    #: how system-wide headers name their sources, e.g. ``schemas/*.toml``
    sources_label: str
    #: what validation found that works but is probably not meant (severity "warning")
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def commands(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.routing_key, m.owner) for m in self.messages if m.kind == "command")

    @property
    def priorities(self) -> tuple[tuple[str, int], ...]:
        """(routing key, default priority) of the keys whose schema gives one above 0."""
        return tuple((m.routing_key, m.priority) for m in self.messages if m.priority)

    @property
    def events(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.routing_key, m.owner) for m in self.messages if m.kind == "event")
