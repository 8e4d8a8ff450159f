"""How two versions of one routing key differ, and whom the difference hurts.

The working parts of :mod:`codegen.contracts.breaking`: :class:`Differ`
walks the old and new contracts field by field and names each change
(:class:`Raw`, breaking or not by the direction the message travels);
:func:`harms` runs the compatibility rules between the versions and every
consumer's view the snapshots record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from codegen.contracts.compat import Incompatibility, check_fields, check_type
from codegen.contracts.defs import (
    EnumDef,
    FieldDef,
    StructDef,
    closed_values,
    describe,
    show_values,
)
from codegen.contracts.snapshot import FieldSnap, MessageSnap, TypeSnap, ViewSnap
from codegen.types import DictType, ListType, NamedType, OptionalType, TypeExpr, parse_type

__all__ = ["Differ", "Harm", "Kind", "Raw", "harms", "under"]

Kind = Literal["command", "event"]


# -- snapshot types as compat definitions ---------------------------------------------


def _field_defs(fields: Mapping[str, FieldSnap]) -> tuple[FieldDef, ...]:
    return tuple(
        FieldDef(name, f.wire_name, parse_type(f.type), not f.required)
        for name, f in sorted(fields.items())
    )


def _scope(types: Mapping[str, TypeSnap]) -> dict[str, StructDef | EnumDef]:
    scope: dict[str, StructDef | EnumDef] = {}
    for name, t in types.items():
        if t.kind == "enum":
            scope[name] = EnumDef(name, tuple(t.values))
        else:
            scope[name] = StructDef(name, _field_defs(t.fields))
    return scope


# -- consumers: who fails to read what ------------------------------------------------


class Harm(msgspec.Struct, frozen=True):
    problem: Incompatibility
    who: str


def _problems(
    writer: MessageSnap | ViewSnap, reader: MessageSnap | ViewSnap
) -> list[Incompatibility]:
    return check_fields(
        _field_defs(writer.fields),
        _scope(writer.types),
        _field_defs(reader.fields),
        _scope(reader.types),
    )


def harms(old: MessageSnap, new: MessageSnap) -> list[Harm]:
    """Compatibility problems between the two versions, by consumer."""
    #: (who, writer, reader)
    pairs: list[tuple[str, MessageSnap | ViewSnap, MessageSnap | ViewSnap]]
    if new.kind == "event":
        pairs = [
            (f"{service}'s view {view.class_} built before this change", new, view)
            for service, view in sorted(old.views.items())
        ]
        pairs += [
            (
                f"{service}'s view {view.class_} reading events published before this change",
                old,
                view,
            )
            for service, view in sorted(new.views.items())
        ]
    else:
        pairs = [
            (f"{service}'s sender view {view.class_} built before this change", view, new)
            for service, view in sorted(old.views.items())
        ]
    return [Harm(p, who) for who, writer, reader in pairs for p in _problems(writer, reader)]


def under(path: str, prefix: str) -> bool:
    """Is the field at ``path`` the one at ``prefix``, or inside it?"""
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[{")


# -- the structural diff ----------------------------------------------------------------


class Raw(msgspec.Struct, frozen=True):
    field: str
    rule: str
    #: breaking on its own (by the direction rules), before looking at consumers
    breaking: bool
    message: str
    #: whether consumers' problems at this path make it breaking
    consumers: bool = True
    #: another path whose consumers' problems belong to this change (a wire name's new path)
    alias: str = ""


class Differ:
    """The structural diff of one routing key's two versions: what changed, field by field."""

    def __init__(self, kind: Kind, old: MessageSnap, new: MessageSnap) -> None:
        self.kind = kind
        self.old_types = old.types
        self.new_types = new.types
        self.old_scope = _scope(old.types)
        self.new_scope = _scope(new.types)
        self.out: list[Raw] = []

    def add(
        self,
        field: str,
        rule: str,
        breaking: bool,
        message: str,
        consumers: bool = True,
        alias: str = "",
    ) -> None:
        self.out.append(Raw(field, rule, breaking, message, consumers, alias))

    def directional(self, old: TypeExpr, new: TypeExpr, path: str) -> bool:
        """Does the type change break the message's readers (compat rules 3-8)?"""
        if self.kind == "event":
            problems = check_type(new, self.new_scope, old, self.old_scope, path)
        else:
            problems = check_type(old, self.old_scope, new, self.new_scope, path)
        return bool(problems)

    def fields(
        self,
        old: Mapping[str, FieldSnap],
        new: Mapping[str, FieldSnap],
        prefix: str,
        seen: frozenset[tuple[str, str]],
    ) -> None:
        new_by_wire = {f.wire_name: (name, f) for name, f in new.items()}
        old_wires = {f.wire_name for f in old.values()}
        renamed: set[str] = set()
        for name, o in sorted(old.items(), key=lambda item: item[1].wire_name):
            path = prefix + o.wire_name
            match = new_by_wire.get(o.wire_name)
            if match is not None:
                self.pair(o, match[1], path, seen)
                continue
            n = new.get(name)
            if n is not None and n.wire_name not in old_wires:
                renamed.add(n.wire_name)
                self.add(
                    path,
                    "wire-name-changed",
                    True,
                    f"field {name!r} is now sent as {n.wire_name!r} (was {o.wire_name!r}); "
                    "readers and writers built from the other version look for the other name",
                    alias=prefix + n.wire_name,
                )
                continue
            if self.kind == "event":
                message = f"field removed ({o.type}); no subscriber's view requires it"
            else:
                message = (
                    f"field removed ({o.type}); the owner ignores it when an old sender "
                    "still sends it"
                )
            self.add(path, "field-removed", False, message)
        for name, n in sorted(new.items(), key=lambda item: item[1].wire_name):
            if n.wire_name in old_wires or n.wire_name in renamed:
                continue
            path = prefix + n.wire_name
            if n.required:
                if self.kind == "command":
                    self.add(
                        path,
                        "required-field-added",
                        True,
                        f"new required field {name!r} ({n.type}) without default; commands sent "
                        "by services built before this change do not have it",
                    )
                else:
                    self.add(
                        path,
                        "required-field-added",
                        False,
                        f"new required field {name!r} ({n.type}); the owner always sends it and "
                        "subscribers ignore fields they do not read",
                    )
            else:
                self.add(
                    path,
                    "field-added",
                    False,
                    f"new field {name!r} ({n.type}) with default {_show_default(n)}",
                )

    def pair(self, o: FieldSnap, n: FieldSnap, path: str, seen: frozenset[tuple[str, str]]) -> None:
        if o.required and not n.required:
            self.add(path, "default-changed", False, f"now has default {_show_default(n)}")
        elif not o.required and n.required:
            if self.kind == "command":
                self.add(
                    path,
                    "required-field-added",
                    True,
                    f"is now required (its default {_show_default(o)} was removed); senders "
                    "that leave it out, relying on the default, are rejected",
                )
            else:
                self.add(
                    path,
                    "required-field-added",
                    False,
                    f"is now required (its default {_show_default(o)} was removed); "
                    "the owner always sends it",
                )
        elif not o.required and o.default != n.default:
            self.add(
                path,
                "default-changed",
                False,
                f"default {_show_default(o)} -> {_show_default(n)} "
                "(only a reader that misses the field uses it)",
            )
        self.type(parse_type(o.type), parse_type(n.type), path, seen)

    def type(
        self, old: TypeExpr, new: TypeExpr, path: str, seen: frozenset[tuple[str, str]]
    ) -> None:
        if isinstance(old, OptionalType) and isinstance(new, OptionalType):
            self.type(old.inner, new.inner, path, seen)
            return
        if isinstance(old, ListType) and isinstance(new, ListType):
            self.type(old.item, new.item, path + "[]", seen)
            return
        if isinstance(old, DictType) and isinstance(new, DictType):
            self.type(old.value, new.value, path + "{}", seen)
            return
        old_struct = _struct(old, self.old_types)
        new_struct = _struct(new, self.new_types)
        if old_struct is not None and new_struct is not None:
            assert isinstance(old, NamedType) and isinstance(new, NamedType)
            if old.name != new.name:
                self.add(
                    path,
                    "class-renamed",
                    False,
                    f"struct {old.name} -> {new.name} (type names are not on the wire)",
                    consumers=False,
                )
            pair = (old.name, new.name)
            if pair not in seen:
                self.fields(old_struct.fields, new_struct.fields, path + ".", seen | {pair})
            return
        old_values = closed_values(old, self.old_scope)
        new_values = closed_values(new, self.new_scope)
        if old_values is not None and new_values is not None:
            added = [v for v in new_values if v not in old_values]
            removed = [v for v in old_values if v not in new_values]
            what = describe(old, self.old_scope)
            if str(old) != str(new):
                what += f" -> {describe(new, self.new_scope)}"
            if added:
                if self.kind == "event":
                    note = "subscribers built before this change reject the new values"
                else:
                    note = "the owner accepts more values; senders are unaffected"
                self.add(
                    path,
                    "enum-widened",
                    self.kind == "event",
                    f"{what}: adds {show_values(added)}; {note}",
                )
            if removed:
                if self.kind == "command":
                    note = "the owner rejects commands that still send them"
                else:
                    note = "the owner no longer sends them; subscribers are unaffected"
                self.add(
                    path,
                    "enum-narrowed",
                    self.kind == "command",
                    f"{what}: removes {show_values(removed)}; {note}",
                )
            if not added and not removed and str(old) != str(new):
                self.add(path, "type-changed", False, f"{what}: same values")
            return
        if str(old) == str(new):
            return
        breaking = self.directional(old, new, path)
        if breaking:
            note = (
                "the owner can no longer read what senders built before this change send"
                if self.kind == "command"
                else "readers built before this change cannot read the new values"
            )
        else:
            note = (
                "every old value is still accepted"
                if self.kind == "command"
                else "every new value is accepted by the old contract"
            )
        self.add(
            path,
            "type-changed",
            breaking,
            f"{describe(old, self.old_scope)} -> {describe(new, self.new_scope)}; {note}",
        )


def _struct(expr: TypeExpr, types: Mapping[str, TypeSnap]) -> TypeSnap | None:
    if isinstance(expr, NamedType):
        found = types.get(expr.name)
        if found is not None and found.kind == "struct":
            return found
    return None


def _show_default(field: FieldSnap) -> str:
    return msgspec.json.encode(field.default).decode()
