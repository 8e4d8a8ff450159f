"""What the build stage knows while it works: per service, and about the whole system."""

from __future__ import annotations

from typing import Literal

import msgspec

from codegen.contracts.defs import EnumDef, FieldDef, StructDef
from codegen.errors import format_key_path, locate
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
from codegen.types import named_types_in
from toolkit.routing import EventRoute

__all__ = ["Owned", "ServiceState", "SystemState", "field_defs", "tainted_types"]


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
        #: class name -> key path of its first declaration in the file: when two
        #: declarations clash, the later one is reported (it is the duplicate)
        self.first_class = _first_declarations(file, decl)
        # What an error already reported made unusable, so that later checks do not
        # report its consequences a second time, somewhere the author did not edit:
        #: named types that cannot be used (bad or clashing name, no values, too deep)
        self.broken_types: set[str] = set()
        #: a class's key path (as :class:`~codegen.model.Place` shows it) -> the wire
        #: names of its fields left out for an error
        self.broken_fields: dict[str, set[str]] = {}
        #: named struct -> how many levels its values nest (:mod:`~codegen.build.nesting`)
        self.depths: dict[str, int] = {}
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
    #: the default priority of its messages (``priority`` in the owner's table)
    priority: int = 0


class SystemState:
    """Every service, every owned routing key and every event route found so far."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceState] = {}
        self.owned: dict[str, Owned] = {}
        #: routing keys whose owner's contract could not be built -> (kind, owner): the
        #: error is reported there; subscribers and senders of the key stay quiet
        self.unbuilt: dict[str, tuple[Literal["command", "event"], ServiceState]] = {}
        #: sorted by channel, then subscriber
        self.routes: tuple[EventRoute, ...] = ()


def field_defs(fields: tuple[FieldModel, ...] | list[FieldModel]) -> tuple[FieldDef, ...]:
    """Fields as the compatibility rules read them."""
    return tuple(
        FieldDef(f.name, f.wire_name, f.type, not f.required, str(f.place)) for f in fields
    )


def tainted_types(svc: ServiceState) -> set[str]:
    """Named types that are broken, lack a field for an error, or hold such a type."""
    if not svc.broken_types and not svc.broken_fields:
        return set()  # the usual case: nothing to compute
    tainted = set(svc.broken_types)
    tainted |= {
        name
        for name, found in svc.scope.items()
        if isinstance(found, StructDef) and svc.broken_fields.get(format_key_path(("types", name)))
    }
    grew = True
    while grew:
        grew = False
        for name, found in svc.scope.items():
            if name in tainted or not isinstance(found, StructDef):
                continue
            if any(tainted.intersection(named_types_in(f.type)) for f in found.fields):
                tainted.add(name)
                grew = True
    return tainted


def _first_declarations(file: SourceFile, decl: SchemaFile) -> dict[str, tuple[str, ...]]:
    """Class name -> key path of its first declaration, by line in the file."""
    declared: list[tuple[str, tuple[str, ...]]] = [(n, ("types", n)) for n in sorted(decl.types)]
    for table in ("commands", "events", "subscribes", "sends"):
        entries = getattr(decl, table)
        declared += [
            (entries[key].class_, (table, key, "class"))
            for key in sorted(entries)
            if entries[key].class_ is not None
        ]
    first: dict[str, tuple[str, ...]] = {}
    # sorted() is stable: declarations on one line keep the order the build claims them in.
    for name, path in sorted(declared, key=lambda item: locate(file.text, item[1])):
        first.setdefault(name, path)
    return first
