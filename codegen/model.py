"""The frozen model of exactly what will be emitted.

Everything a template prints is computed here: Python names, annotations,
default expressions, import lines, docstring literals. Templates only loop
and print.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from codegen.python.pytext import docstring, export_order, py_str, wrap_assignment
from codegen.types import TypeExpr
from toolkit.routing import ChannelSpec, EventRoute

__all__ = [
    "EnumModel",
    "FieldModel",
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
    annotation: str
    #: Python source of the default (``None``, ``'free'``, ``msgspec.field(...)``) or None if required
    default_expr: str | None
    #: the default as plain data (for snapshots and JSON Schema), None when required
    default_value: object
    doc: str
    place: Place
    #: False when the field may be missing on the wire (it has a default)
    required: bool = True

    @property
    def declaration(self) -> str:
        """The whole field line(s) inside a class body, without the first indent."""
        if self.default_expr is None:
            return f"{self.name}: {self.annotation}"
        return wrap_assignment(f"{self.name}: {self.annotation}", self.default_expr, "    ")


class StructModel(msgspec.Struct, frozen=True):
    class_name: str
    #: "contract" (owned), "view" (a consumer's or sender's own class), or "type" (named struct)
    role: Literal["contract", "view", "type"]
    routing_key: str
    docstring: str
    fields: tuple[FieldModel, ...]
    place: Place


class EnumModel(msgspec.Struct, frozen=True):
    class_name: str
    docstring: str
    #: (member name, value)
    members: tuple[tuple[str, str], ...]
    place: Place


class MessageModel(msgspec.Struct, frozen=True):
    """A routing key as its owner declares it."""

    routing_key: str
    kind: Literal["command", "event"]
    owner: str
    contract: StructModel


class HandlerMethod(msgspec.Struct, frozen=True):
    method_name: str
    routing_key: str
    kind: Literal["command", "event"]
    class_name: str
    doc: str

    @property
    def docstring(self) -> str:
        text = f"{self.kind.capitalize()} ``{self.routing_key}``."
        if self.doc.strip():
            text += "\n\n" + self.doc
        return docstring(text, "        ")


class PublisherMethod(msgspec.Struct, frozen=True):
    method_name: str
    routing_key: str
    kind: Literal["command", "event"]
    class_name: str
    #: commands only
    target_service: str
    doc: str

    @property
    def argument(self) -> str:
        return self.kind

    @property
    def returns(self) -> str:
        return "str" if self.kind == "command" else "PublishResult"

    @property
    def bus_method(self) -> str:
        return "send_command" if self.kind == "command" else "publish_event"

    @property
    def bus_args(self) -> tuple[str, ...]:
        head = (py_str(self.target_service),) if self.kind == "command" else ()
        return (*head, py_str(self.routing_key), self.argument, "metadata", "caused_by=caused_by")

    @property
    def docstring(self) -> str:
        if self.kind == "command":
            text = f"Send command ``{self.routing_key}`` to {self.target_service}; returns the message id."
        else:
            text = f"Publish event ``{self.routing_key}`` to every subscribed channel."
        if self.doc.strip():
            text += "\n\n" + self.doc
        return docstring(text, "        ")


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
    #: import lines for messages.py / publisher.py / handlers.py
    message_imports: tuple[str, ...]
    publisher_imports: tuple[str, ...]
    handler_imports: tuple[str, ...]
    channels: tuple[str, ...]

    @property
    def message_names(self) -> tuple[str, ...]:
        return export_order(
            [e.class_name for e in self.enums] + [s.class_name for s in self.structs]
        )

    @property
    def exported_names(self) -> tuple[str, ...]:
        own = (
            "SERVICE",
            f"{self.class_prefix}Handlers",
            f"{self.class_prefix}Publisher",
            f"{self.class_prefix}SyncPublisher",
            "bind",
        )
        return export_order((*own, *self.message_names))

    @property
    def messages_import(self) -> str:
        names = self.message_names
        if not names:
            return ""
        line = f"from .messages import {', '.join(names)}"
        if len(line) <= 88:
            return line
        inner = "".join(f"    {n},\n" for n in names)
        return f"from .messages import (\n{inner})"


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

    @property
    def commands(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.routing_key, m.owner) for m in self.messages if m.kind == "command")

    @property
    def events(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.routing_key, m.owner) for m in self.messages if m.kind == "event")
