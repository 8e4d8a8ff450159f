"""Load schema files, validate them, and build the frozen model to emit.

Every problem of a run is collected (not just the first) and raised together
as :class:`~codegen.errors.SchemaErrors`, each with file, line, key path,
what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from codegen.contracts.compat import (
    EnumDef,
    FieldDef,
    StructDef,
    TypeScope,
    check_fields,
    extra_writer_fields,
)
from codegen.errors import Diagnostic, SchemaErrors, format_key_path, locate
from codegen.model import (
    EnumModel,
    FieldModel,
    ForeignClass,
    HandlerMethod,
    MessageModel,
    Place,
    PublisherMethod,
    ServiceModel,
    StructModel,
    SystemModel,
)
from codegen.python import pytext
from codegen.schema import (
    CommandDecl,
    EventDecl,
    FieldSpec,
    SchemaFile,
    SendDecl,
    SubscribeDecl,
    normalize_field,
)
from codegen.types import (
    SCALARS,
    DictType,
    ListType,
    LiteralType,
    NamedType,
    OptionalType,
    ScalarType,
    TypeExpr,
    TypeSyntaxError,
    named_types_in,
    parse_type,
    scalar_text,
)
from toolkit.paths import relative_path
from toolkit.routing import ChannelSpec, EventRoute, event_channels

__all__ = ["build_system", "load_system"]

ROUTING_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

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


class _File:
    """One loaded schema file and its diagnostics sink."""

    def __init__(self, path: Path, display: str, text: str, sink: list[Diagnostic]) -> None:
        self.path = path
        self.display = display
        self.text = text
        self.sink = sink
        self.decl: SchemaFile | None = None
        self.hash = hashlib.sha256(text.encode()).hexdigest()[:16]

    def place(self, *path: str | int) -> Place:
        return Place(self.display, locate(self.text, path), format_key_path(path))

    def error(self, path: Iterable[str | int], message: str, hint: str = "") -> None:
        keys = tuple(path)
        self.sink.append(
            Diagnostic(self.display, locate(self.text, keys), format_key_path(keys), message, hint)
        )


_MSGSPEC_PATH = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]|\['((?:[^'\\]|\\.)*)'\]""")


def _parse_msgspec_path(text: str) -> list[str | int]:
    path: list[str | int] = []
    for match in _MSGSPEC_PATH.finditer(text):
        name, index, quoted = match.groups()
        if name is not None:
            path.append(name)
        elif index is not None:
            path.append(int(index))
        else:
            path.append(quoted.replace("\\'", "'"))
    return path


_SHAPE_HINTS = {
    "unknown field": "check the spelling; docs/schema.md lists every key a table may hold",
    "missing required field": "add the key; docs/schema.md shows a complete example",
    "Expected `str | object`": 'write either a type string (name = "int") or a table (name = { type = "int" })',
    "Expected `array`": 'write a list, e.g. ["user.*"]',
    "Invalid enum value": 'use kind = "queue" or kind = "stream" (channels), "struct" or "enum" (types)',
}


def _load_file(path: Path, sink: list[Diagnostic]) -> _File | None:
    display = relative_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        sink.append(Diagnostic(display, 0, "", f"cannot read schema file: {exc}"))
        return None
    file = _File(path, display, text, sink)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else 0
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if match:
            message += f" (column {match.group(2)})"
        sink.append(
            Diagnostic(
                display,
                line,
                "",
                f"TOML syntax error: {message}",
                "see https://toml.io for the syntax",
            )
        )
        return None
    try:
        file.decl = msgspec.convert(data, SchemaFile, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raw_path = ""
        if " - at `$" in message:
            message, raw_path = message.split(" - at `$", 1)
            raw_path = raw_path.rstrip("`")
        keys = _parse_msgspec_path(raw_path)
        match = re.search(r"unknown field `([^`]+)`", message)
        if match:
            keys.append(match.group(1))
        hint = next((h for k, h in _SHAPE_HINTS.items() if k in message), "")
        file.error(keys, message, hint)
        return None
    return file


def load_system(schemas_dir: Path, package: str = "generated") -> SystemModel:
    """Read every ``*.toml`` under ``schemas_dir`` and build the system model."""
    sink: list[Diagnostic] = []
    paths = sorted(schemas_dir.glob("*.toml")) if schemas_dir.is_dir() else []
    if not paths:
        raise SchemaErrors(
            [
                Diagnostic(
                    relative_path(schemas_dir),
                    0,
                    "",
                    "no schema files (*.toml) found"
                    if schemas_dir.is_dir()
                    else "schema folder does not exist",
                    "create one file per service; docs/schema.md has an example",
                )
            ]
        )
    files = [f for f in (_load_file(p, sink) for p in paths) if f is not None]
    if sink:
        # Shape errors make the semantic checks unreliable; report what we have.
        raise SchemaErrors(sink)
    return build_system(files, package, sink)


def build_system(files: list[_File], package: str, sink: list[Diagnostic]) -> SystemModel:
    builder = _Builder(files, package, sink)
    system = builder.build()
    if sink:
        raise SchemaErrors(sink)
    return system


class _Service:
    """Per-service working state while building."""

    def __init__(self, file: _File, decl: SchemaFile) -> None:
        self.file = file
        self.decl = decl
        self.name = decl.service.name
        self.scope: dict[str, StructDef | EnumDef] = {}
        self.class_names: dict[str, tuple[str, ...]] = {}
        self.enums: list[EnumModel] = []
        self.type_structs: list[StructModel] = []
        self.contracts: list[StructModel] = []
        self.views: list[StructModel] = []
        self.handlers: list[HandlerMethod] = []
        self.publishers: list[PublisherMethod] = []


class _Builder:
    def __init__(self, files: list[_File], package: str, sink: list[Diagnostic]) -> None:
        self.files = files
        self.package = package
        self.sink = sink
        self.services: dict[str, _Service] = {}
        #: routing key -> (kind, owner, contract struct, owner's FieldDefs)
        self.owned: dict[
            str, tuple[Literal["command", "event"], _Service, StructModel, tuple[FieldDef, ...]]
        ] = {}

    # -- entry -----------------------------------------------------------------------

    def build(self) -> SystemModel:
        for file in self.files:
            assert file.decl is not None
            name = file.decl.service.name
            if not SERVICE_NAME.match(name) or pytext.identifier_problem(name, "service name"):
                file.error(
                    ("service", "name"),
                    f"service name {name!r} must be lower_snake_case (it names a Python package)",
                    'e.g. name = "ticket_service"',
                )
                continue
            if name in self.services:
                other = self.services[name].file
                file.error(
                    ("service", "name"),
                    f"service {name!r} is already declared in {other.display}",
                    "each service has exactly one schema file; rename one of them",
                )
                continue
            self.services[name] = _Service(file, file.decl)
        for svc in self.services.values():
            self._named_types(svc)
        for svc in self.services.values():
            self._owned_messages(svc)
        channels, command_routes, event_routes = self._channels()
        for svc in self.services.values():
            self._subscriptions(svc)
            self._sends(svc)
            self._check_method_names(svc)
        services = tuple(
            self._service_model(svc) for svc in sorted(self.services.values(), key=lambda s: s.name)
        )
        messages = tuple(
            MessageModel(key, kind, owner.name, contract)
            for key, (kind, owner, contract, _) in sorted(self.owned.items())
        )
        views = tuple(
            sorted(
                ((v.routing_key, svc.name, v) for svc in self.services.values() for v in svc.views),
                key=lambda item: (item[0], item[1], item[2].class_name),
            )
        )
        return SystemModel(
            package=self.package,
            services=services,
            channels=channels,
            command_routes=command_routes,
            event_routes=event_routes,
            messages=messages,
            views=views,
            source_files=tuple(f.display for f in self.files),
            sources_hash=hashlib.sha256("".join(f.hash for f in self.files).encode()).hexdigest()[
                :16
            ],
            sources_label=_sources_label(self.files),
        )

    # -- names -----------------------------------------------------------------------

    def _claim_class(self, svc: _Service, name: str, path: tuple[str, ...]) -> bool:
        problem = pytext.identifier_problem(name, "class name")
        if problem is None and name in pytext.RESERVED_CLASS_NAMES:
            problem = (
                f"class name {name!r} clashes with a builtin or a name the generated code uses"
            )
        if problem is None and not name[:1].isupper():
            problem = f"class name {name!r} should start with an upper-case letter"
        if problem:
            svc.file.error(path, problem, "use a PascalCase name such as 'TicketCreated'")
            return False
        if name in svc.class_names:
            svc.file.error(
                path,
                f"class name {name!r} is already used at {format_key_path(svc.class_names[name])}",
                "class names must be unique within a service; rename one of them",
            )
            return False
        svc.class_names[name] = path
        return True

    # -- named types -----------------------------------------------------------------

    def _named_types(self, svc: _Service) -> None:
        decl = svc.decl
        # Pass 1: declare names so fields may refer to types declared later.
        for type_name, tdecl in sorted(decl.types.items()):
            path = ("types", type_name)
            if not self._claim_class(svc, type_name, path):
                continue
            if tdecl.kind == "enum":
                if tdecl.fields:
                    svc.file.error(
                        path + ("fields",),
                        "an enum has values, not fields",
                        'remove fields or use kind = "struct"',
                    )
                if not tdecl.values:
                    svc.file.error(
                        path + ("values",),
                        "an enum needs at least one value",
                        'values = ["a", "b"]',
                    )
                    continue
                members: list[tuple[str, str]] = []
                seen: dict[str, str] = {}
                for value in tdecl.values:
                    member = _enum_member(value)
                    if pytext.identifier_problem(member, "enum member") or member in seen:
                        svc.file.error(
                            path + ("values",),
                            f"enum value {value!r} gives member name {member}, which "
                            + (
                                f"clashes with value {seen[member]!r}"
                                if member in seen
                                else "is not valid"
                            ),
                            "make the values differ in more than case and punctuation",
                        )
                        continue
                    seen[member] = value
                    members.append((member, value))
                svc.scope[type_name] = EnumDef(type_name, tuple(tdecl.values))
                svc.enums.append(
                    EnumModel(type_name, tdecl.description, tuple(members), svc.file.place(*path))
                )
            else:
                if tdecl.values:
                    svc.file.error(
                        path + ("values",),
                        "a struct has fields, not values",
                        'remove values or use kind = "enum"',
                    )
                svc.scope[type_name] = StructDef(type_name, ())
        # Pass 2: struct fields, now that every name is known.
        structs: dict[str, StructModel] = {}
        for type_name, tdecl in sorted(decl.types.items()):
            if tdecl.kind != "struct" or type_name not in svc.scope:
                continue
            path = ("types", type_name)
            fields = self._fields(svc, tdecl.fields, path + ("fields",))
            svc.scope[type_name] = StructDef(
                type_name, tuple(_field_def(f) for f in fields), str(svc.file.place(*path))
            )
            structs[type_name] = StructModel(
                type_name,
                "type",
                "",
                tdecl.description,
                tuple(fields),
                svc.file.place(*path),
            )
        svc.type_structs = _dependency_order(structs)

    # -- fields ----------------------------------------------------------------------

    def _fields(
        self, svc: _Service, specs: dict[str, FieldSpec], path: tuple[str, ...]
    ) -> list[FieldModel]:
        fields: list[FieldModel] = []
        wire_names: dict[str, str] = {}
        for name, spec in specs.items():
            fpath = path + (name,)
            field = normalize_field(spec)
            problem = pytext.identifier_problem(name, "field name")
            if problem is None and name.startswith("_"):
                problem = f"field name {name!r} starts with an underscore"
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
                default, problem = _default_value(texpr, field.default, svc.scope)
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

    # -- owned messages ---------------------------------------------------------------

    def _owned_messages(self, svc: _Service) -> None:
        decl = svc.decl
        groups: list[tuple[Literal["command", "event"], str, Any]] = [
            ("command", "commands", decl.commands),
            ("event", "events", decl.events),
        ]
        for kind, table, entries in groups:
            for key, mdecl in sorted(entries.items()):
                path = (table, key)
                if not ROUTING_KEY.match(key):
                    svc.file.error(
                        path,
                        f"routing key {key!r} is not valid",
                        "use dot-separated words of letters, digits, '_' or '-', e.g. 'ticket.create'",
                    )
                    continue
                existing = self.owned.get(key)
                if existing is not None:
                    other_kind, other, _, _ = existing
                    where = f"{other.file.display} ({other.name})"
                    if kind == "command" and other_kind == "command":
                        message = f"command {key!r} is owned by two services: here and in {where}"
                        hint = "a command has one owner, the service that handles it; remove one declaration"
                    else:
                        message = f"duplicate routing key {key!r}: also declared as {other_kind} in {where}"
                        hint = "a routing key names one message; rename one of them"
                    svc.file.error(path, message, hint)
                    continue
                note = f"{kind.capitalize()} ``{key}``: the contract, owned by {svc.name}."
                struct = self._message_struct(svc, mdecl, "contract", key, path, note)
                if struct is None:
                    continue
                fields = list(struct.fields)
                svc.contracts.append(struct)
                self.owned[key] = (kind, svc, struct, tuple(_field_def(f) for f in fields))
                if kind == "command":
                    svc.handlers.append(
                        HandlerMethod(
                            _method("on", key), key, "command", mdecl.class_, mdecl.description
                        )
                    )
                else:
                    svc.publishers.append(
                        PublisherMethod(
                            _method("publish", key),
                            key,
                            "event",
                            mdecl.class_,
                            "",
                            mdecl.description,
                        )
                    )

    # -- channels and the service map -------------------------------------------------

    def _channels(
        self,
    ) -> tuple[tuple[ChannelSpec, ...], tuple[tuple[str, str], ...], tuple[EventRoute, ...]]:
        seen: dict[str, tuple[str, _Service]] = {}
        consumers: dict[str, list[str]] = {}
        descriptions: dict[str, str] = {}
        command_routes: dict[str, str] = {}
        routes: list[EventRoute] = []
        for svc in sorted(self.services.values(), key=lambda s: s.name):
            command_channel: str | None = None
            for cname, cdecl in sorted(svc.decl.channels.items()):
                path = ("channels", cname)
                if not CHANNEL_NAME.match(cname):
                    svc.file.error(
                        path,
                        f"channel name {cname!r} is not valid",
                        "use letters, digits, '_', '-', '.' or ':'",
                    )
                    continue
                if cname in seen:
                    kind, first = seen[cname]
                    if kind != cdecl.kind:
                        svc.file.error(
                            path + ("kind",),
                            f"channel {cname!r} is a {cdecl.kind} here but a {kind} in {first.file.display}",
                            "a channel has one kind; make both declarations agree",
                        )
                        continue
                    if kind == "queue":
                        svc.file.error(
                            path,
                            f"queue channel {cname!r} is already consumed by {first.name}",
                            'a queue has one consuming service; use kind = "stream" to share it (one group per service)',
                        )
                        continue
                else:
                    seen[cname] = (cdecl.kind, svc)
                consumers.setdefault(cname, []).append(svc.name)
                if cdecl.description and cname not in descriptions:
                    descriptions[cname] = cdecl.description
                if cdecl.commands:
                    if cdecl.kind != "queue":
                        svc.file.error(
                            path + ("commands",),
                            f"commands need a queue channel, but {cname!r} is a stream",
                            'use kind = "queue" for the channel that receives this service\'s commands',
                        )
                    elif command_channel is not None:
                        svc.file.error(
                            path + ("commands",),
                            f"service {svc.name!r} already receives commands on {command_channel!r}",
                            "a service has one command channel",
                        )
                    else:
                        command_channel = cname
                        command_routes[svc.name] = cname
                if cdecl.include_publishers is not None and cdecl.exclude_publishers is not None:
                    svc.file.error(
                        path,
                        "include_publishers and exclude_publishers are both set",
                        "a subscription either lists the publishers it accepts or the ones it ignores; keep one",
                    )
                    continue
                for listname in ("include_publishers", "exclude_publishers"):
                    names = getattr(cdecl, listname) or []
                    for index, publisher in enumerate(names):
                        if publisher not in self.services:
                            svc.file.error(
                                path + (listname, index),
                                f"{listname} names unknown service {publisher!r}",
                                f"known services: {', '.join(sorted(self.services))}",
                            )
                ok = True
                for index, pattern in enumerate(cdecl.subscribe):
                    if not KEY_PATTERN.match(pattern):
                        svc.file.error(
                            path + ("subscribe", index),
                            f"subscription key {pattern!r} is not a valid routing key or pattern",
                            "use dot-separated words; '*' matches any run of characters, dots included (e.g. 'user.*')",
                        )
                        ok = False
                if not cdecl.subscribe and not cdecl.commands:
                    svc.file.error(
                        path,
                        f"channel {cname!r} receives nothing: it has no subscribe keys and commands = false",
                        'add subscribe = ["key.*"] or commands = true, or remove the channel',
                    )
                if cdecl.subscribe and ok:
                    routes.append(
                        EventRoute(
                            cname,
                            svc.name,
                            tuple(cdecl.subscribe),
                            tuple(cdecl.include_publishers)
                            if cdecl.include_publishers is not None
                            else None,
                            tuple(cdecl.exclude_publishers)
                            if cdecl.exclude_publishers is not None
                            else None,
                        )
                    )
            if svc.decl.commands and command_channel is None:
                svc.file.error(
                    ("commands",),
                    f"service {svc.name!r} accepts commands but no channel receives them",
                    'declare a channel with kind = "queue" and commands = true',
                )
        channels = tuple(
            ChannelSpec(
                name,
                "queue" if seen[name][0] == "queue" else "stream",
                tuple(sorted(consumers[name])),
                descriptions.get(name, ""),
            )
            for name in sorted(seen)
        )
        routes.sort(key=lambda r: (r.channel, r.subscriber))
        self._routes = routes
        return channels, tuple(sorted(command_routes.items())), tuple(routes)

    # -- consumers' views -------------------------------------------------------------

    def _subscriptions(self, svc: _Service) -> None:
        for key, sdecl in sorted(svc.decl.subscribes.items()):
            path = ("subscribes", key)
            if not ROUTING_KEY.match(key):
                svc.file.error(
                    path,
                    f"routing key {key!r} is not valid",
                    "subscribe to a concrete key such as 'user.registered'; patterns belong in channels.*.subscribe",
                )
                continue
            owned = self.owned.get(key)
            if owned is None or owned[0] != "event":
                what = "is a command, not an event" if owned else "is not published by any service"
                events = sorted(k for k, v in self.owned.items() if v[0] == "event")
                svc.file.error(
                    path,
                    f"event {key!r} {what}",
                    f"published events: {', '.join(events) or 'none'}",
                )
                continue
            _, owner, contract, contract_defs = owned
            own_routes = [r for r in self._routes if r.subscriber == svc.name]
            arrives = event_channels(own_routes, key, owner.name)
            if not arrives:
                svc.file.error(
                    path,
                    f"event {key!r} never reaches {svc.name}: no channel it consumes subscribes to it"
                    f" (from publisher {owner.name})",
                    f'add "{key}" (or a pattern that matches it) to subscribe = [...] of one of its channels',
                )
            note = f"Event ``{key}`` as {svc.name} reads it.\nContract: {owner.name}.{contract.class_name}."
            view = self._message_struct(svc, sdecl, "view", key, path, note)
            if view is None:
                continue
            fields = list(view.fields)
            self._check_compat(
                key,
                writer=(owner, contract, contract_defs),
                reader=(svc, view, tuple(_field_def(f) for f in fields)),
                reader_path=path,
            )
            svc.views.append(view)
            svc.handlers.append(
                HandlerMethod(_method("on", key), key, "event", sdecl.class_, sdecl.description)
            )

    def _sends(self, svc: _Service) -> None:
        for key, sdecl in sorted(svc.decl.sends.items()):
            path = ("sends", key)
            target = self.services.get(sdecl.service)
            if target is None:
                svc.file.error(
                    path + ("service",),
                    f"command {key!r} is sent to service {sdecl.service!r}, which does not exist",
                    f"known services: {', '.join(sorted(self.services))}",
                )
                continue
            owned = self.owned.get(key)
            if owned is None or owned[0] != "command" or owned[1] is not target:
                owner_note = (
                    f"it is owned by {owned[1].name} as {'a command' if owned[0] == 'command' else 'an event'}"
                    if owned
                    else "no service declares it"
                )
                commands = sorted(
                    k for k, v in self.owned.items() if v[0] == "command" and v[1] is target
                )
                svc.file.error(
                    path,
                    f"{target.name} accepts no command {key!r}: {owner_note}",
                    f"commands {target.name} accepts: {', '.join(commands) or 'none'}",
                )
                continue
            _, owner, contract, contract_defs = owned
            foreign: ForeignClass | None = None
            if sdecl.class_ is None:
                if sdecl.fields:
                    svc.file.error(
                        path + ("fields",),
                        "fields given without class",
                        'name your view: class = "..."',
                    )
                    continue
                foreign = ForeignClass(owner.name, contract.class_name)
                class_name = _local_name(svc, foreign)
            else:
                note = f"Command ``{key}`` as {svc.name} sends it.\nContract: {owner.name}.{contract.class_name}."
                view = self._message_struct(svc, sdecl, "view", key, path, note)
                if view is None:
                    continue
                fields = list(view.fields)
                # The sender writes, the owner reads.
                self._check_compat(
                    key,
                    writer=(svc, view, tuple(_field_def(f) for f in fields)),
                    reader=(owner, contract, contract_defs),
                    reader_path=path,
                    sender_view=True,
                )
                svc.views.append(view)
                class_name = sdecl.class_
            svc.publishers.append(
                PublisherMethod(
                    _method("send", key),
                    key,
                    "command",
                    class_name,
                    target.name,
                    sdecl.description or target.decl.commands[key].description,
                    foreign,
                )
            )

    def _message_struct(
        self,
        svc: _Service,
        decl: CommandDecl | EventDecl | SubscribeDecl | SendDecl,
        role: Literal["contract", "view"],
        key: str,
        path: tuple[str, ...],
        note: str,
    ) -> StructModel | None:
        """The class a message table declares; None when its class name is unusable.

        Fields are checked even then, so one run reports every problem.
        """
        assert decl.class_ is not None
        claimed = self._claim_class(svc, decl.class_, (*path, "class"))
        fields = self._fields(svc, decl.fields, (*path, "fields"))
        if not claimed:
            return None
        return StructModel(
            decl.class_,
            role,
            key,
            _struct_doc(decl.description, note),
            tuple(fields),
            svc.file.place(*path),
        )

    def _check_compat(
        self,
        key: str,
        *,
        writer: tuple[_Service, StructModel, tuple[FieldDef, ...]],
        reader: tuple[_Service, StructModel, tuple[FieldDef, ...]],
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

    def _check_method_names(self, svc: _Service) -> None:
        for kind, methods in (("handler", svc.handlers), ("publisher", svc.publishers)):
            seen: dict[str, str] = {}
            for method in methods:
                name = method.method_name
                if name in seen:
                    svc.file.error(
                        (),
                        f"routing keys {seen[name]!r} and {method.routing_key!r} both give {kind} method {name}",
                        "rename one of the keys",
                    )
                seen[name] = method.routing_key

    # -- the service model ------------------------------------------------------------

    def _service_model(self, svc: _Service) -> ServiceModel:
        return ServiceModel(
            name=svc.name,
            description=svc.decl.service.description,
            source_file=svc.file.display,
            source_hash=svc.file.hash,
            class_prefix=pytext.snake_to_pascal(svc.name),
            enums=tuple(sorted(svc.enums, key=lambda e: e.class_name)),
            structs=tuple(svc.type_structs)
            + tuple(sorted(svc.contracts, key=lambda s: s.routing_key))
            + tuple(sorted(svc.views, key=lambda s: (s.routing_key, s.class_name))),
            handlers=tuple(sorted(svc.handlers, key=lambda h: h.routing_key)),
            publishers=tuple(sorted(svc.publishers, key=lambda p: (p.kind, p.routing_key))),
            channels=tuple(sorted(svc.decl.channels)),
        )


def _sources_label(files: list[_File]) -> str:
    parents = {str(Path(f.display).parent) for f in files}
    if len(parents) == 1:
        parent = parents.pop()
        return "*.toml" if parent == "." else f"{parent}/*.toml"
    return ", ".join(f.display for f in files)


def _struct_doc(description: str, note: str) -> str:
    text = description.strip()
    return f"{text}\n\n{note}" if text else note


def _enum_member(value: str) -> str:
    """The member name of an enum value: ``high-ish`` -> ``HIGH_ISH``, ``9lives`` -> ``V_9LIVES``."""
    member = re.sub(r"\W", "_", value).upper() or "EMPTY"
    return "V_" + member if member[0].isdigit() else member


def _local_name(svc: _Service, foreign: ForeignClass) -> str:
    """How ``svc`` names another service's class: as it is, or prefixed when the name is taken."""
    if foreign.class_name in svc.class_names:
        return pytext.snake_to_pascal(foreign.service) + foreign.class_name
    return foreign.class_name


def _method(prefix: str, key: str) -> str:
    return prefix + "_" + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").lower()


def _field_def(field: FieldModel) -> FieldDef:
    return FieldDef(field.name, field.wire_name, field.type, not field.required, str(field.place))


def _dependency_order(structs: dict[str, StructModel]) -> list[StructModel]:
    """Named structs so that each comes after the structs its fields use (cycles keep name order)."""
    ordered: list[StructModel] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):
            return
        state[name] = 1
        for field in structs[name].fields:
            for dep in named_types_in(field.type):
                if dep in structs:
                    visit(dep)
        state[name] = 2
        ordered.append(structs[name])

    for name in sorted(structs):
        visit(name)
    return ordered


def _default_value(expr: TypeExpr, value: Any, scope: TypeScope) -> tuple[object, str | None]:
    """Check a TOML default against its type: (the model's default value, problem)."""
    bad = f"default {value!r} is not a valid {expr}"
    if isinstance(expr, OptionalType):
        return _default_value(expr.inner, value, scope)
    if isinstance(expr, ScalarType):
        name = expr.name
        if name == "str":
            return (value, None) if isinstance(value, str) else (None, bad)
        if name == "bool":
            return (value, None) if isinstance(value, bool) else (None, bad)
        if name == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
            return (value, None) if ok else (None, bad)
        if name == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if (ok and value != value) or value in (float("inf"), float("-inf")):
                return None, "default must be a finite number"
            return (float(value), None) if ok else (None, bad)
        if name == "bytes":
            if isinstance(value, str):
                return value, None
            return None, "a bytes default is written as a string"
        text = scalar_text(name, value)
        return (text, None) if text is not None else (None, bad)
    if isinstance(expr, LiteralType):
        if value in expr.values and type(value) in (str, int):
            return value, None
        return None, f"default {value!r} is not one of {list(expr.values)}"
    if isinstance(expr, NamedType):
        found = scope.get(expr.name)
        if isinstance(found, EnumDef):
            if isinstance(value, str) and value in found.values:
                return value, None
            return (
                None,
                f"default {value!r} is not a value of enum {expr.name} ({', '.join(found.values)})",
            )
        return (
            None,
            f"a field of struct type {expr.name} cannot have a default; make it optional[{expr.name}]",
        )
    is_list = isinstance(expr, ListType)
    if not isinstance(value, list if is_list else dict):
        return None, bad
    item = expr.item if isinstance(expr, ListType) else expr.value
    bare = item
    while isinstance(bare, OptionalType):
        bare = bare.inner
    for element in value if isinstance(value, list) else value.values():
        _, problem = _default_value(item, element, scope)
        if problem:
            return None, problem
        if isinstance(bare, ListType | DictType):
            return None, f"default {value!r}: only scalar items may have defaults"
    return value, None
