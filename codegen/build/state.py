"""What the build stage knows while it works: per service, and about the whole system."""

from __future__ import annotations

from typing import Literal

import msgspec

from codegen.contracts.defs import EnumDef, FieldDef, StructDef
from codegen.load import SourceFile
from codegen.model import (
    EnumModel,
    FieldModel,
    ForeignClass,
    HandlerMethod,
    PublisherMethod,
    StructModel,
)
from codegen.schema import SchemaFile
from toolkit.routing import EventRoute

__all__ = ["Owned", "ServiceState", "SystemState", "field_defs"]


class ServiceState:
    """One service while it is being built: its file, its names and what it will emit."""

    def __init__(self, file: SourceFile, decl: SchemaFile) -> None:
        self.file = file
        self.decl = decl
        self.name = decl.service.name
        #: named types, for compatibility checks and defaults
        self.scope: dict[str, StructDef | EnumDef] = {}
        #: class name -> key path of its declaration
        self.class_names: dict[str, tuple[str, ...]] = {}
        #: name -> the class of another service imported under it (sends without a view)
        self.foreign_names: dict[str, ForeignClass] = {}
        self.enums: list[EnumModel] = []
        self.type_structs: list[StructModel] = []
        self.contracts: list[StructModel] = []
        self.views: list[StructModel] = []
        self.handlers: list[HandlerMethod] = []
        self.publishers: list[PublisherMethod] = []


class Owned(msgspec.Struct, frozen=True):
    """A routing key and its owner's contract."""

    kind: Literal["command", "event"]
    owner: ServiceState
    contract: StructModel
    defs: tuple[FieldDef, ...]


class SystemState:
    """Every service, every owned routing key and every event route found so far."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceState] = {}
        self.owned: dict[str, Owned] = {}
        #: sorted by channel, then subscriber
        self.routes: tuple[EventRoute, ...] = ()


def field_defs(fields: tuple[FieldModel, ...] | list[FieldModel]) -> tuple[FieldDef, ...]:
    """Fields as the compatibility rules read them."""
    return tuple(
        FieldDef(f.name, f.wire_name, f.type, not f.required, str(f.place)) for f in fields
    )
