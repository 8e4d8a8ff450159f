"""Breaking-change detection between two contract snapshots.

``compare(old, new)`` lists every change per routing key, each marked
breaking or safe with the rule that decides it (docs/compatibility.md,
"Breaking changes"). Pure functions: no I/O.

Who may be hurt depends on the kind of message:

* an **event** is written by its owner and read by subscribers. After the
  change, subscribers built from the old schemas read the owner's new
  messages, and subscribers built from the new schemas may read events
  published before the change (still in a stream, or replayed from the
  dead-letter queue). So the new contract must be readable by the old
  contract and the old views; and the new views must read the old contract.
* a **command** is written by senders and read by its owner. After the
  change, the owner reads commands sent by services built from the old
  schemas (through the old contract class or their own old view), so the old
  contract and old sender views must be readable by the new contract.

The compatibility rules of :mod:`codegen.contracts.compat` decide each case; the
structural diff only names what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from codegen.contracts.compat import (
    EnumDef,
    FieldDef,
    Incompatibility,
    StructDef,
    check_fields,
    check_type,
)
from codegen.contracts.snapshot import FieldSnap, MessageSnap, Snapshot, TypeSnap
from codegen.types import (
    DictType,
    ListType,
    LiteralType,
    NamedType,
    OptionalType,
    TypeExpr,
    parse_type,
)

__all__ = [
    "BREAKING_RULES",
    "RULES",
    "Change",
    "accept",
    "compare",
    "unused_accepts",
]

#: rule slug -> title; the slugs are what ``--allow-breaking KEY:RULE`` names.
RULES: Mapping[str, str] = {
    "key-removed": "routing key removed",
    "kind-changed": "kind changed",
    "owner-changed": "owner changed",
    "field-removed": "field removed",
    "type-changed": "type changed",
    "required-field-added": "new required field without default",
    "wire-name-changed": "wire name changed",
    "enum-narrowed": "enum or literal narrowed",
    "enum-widened": "enum or literal widened",
    "key-added": "routing key added",
    "field-added": "field added",
    "default-changed": "default changed",
    "class-renamed": "class renamed",
}

#: Rules that may be breaking (the others are always safe).
BREAKING_RULES: frozenset[str] = frozenset(
    {
        "key-removed",
        "kind-changed",
        "owner-changed",
        "field-removed",
        "type-changed",
        "required-field-added",
        "wire-name-changed",
        "enum-narrowed",
        "enum-widened",
    }
)

Kind = Literal["command", "event"]


class Change(msgspec.Struct, frozen=True, order=True):
    """One difference between the old and the new contracts of one routing key."""

    key: str
    #: dotted wire path (``billing_address.city``, ``tags[]``); empty for the key itself
    field: str
    rule: str
    breaking: bool
    message: str
    #: a breaking change the user accepted (``--allow-breaking`` or ``accept_breaking``)
    accepted: bool = False

    @property
    def verdict(self) -> str:
        if not self.breaking:
            return "safe"
        return "breaking (accepted)" if self.accepted else "breaking"

    def render(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"  {self.verdict}: {self.rule}: {where}{self.message}"


# -- scopes: snapshot types -> compat definitions -------------------------------------


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


class _Harm(msgspec.Struct, frozen=True):
    problem: Incompatibility
    who: str


def _harms(old: MessageSnap, new: MessageSnap) -> list[_Harm]:
    """Compatibility problems between the two versions, by consumer."""
    old_scope, new_scope = _scope(old.types), _scope(new.types)
    harms: list[_Harm] = []
    if new.kind == "event":
        for service, view in sorted(old.views.items()):
            who = f"{service}'s view {view.class_} built before this change"
            for p in check_fields(
                _field_defs(new.fields),
                new_scope,
                _field_defs(view.fields),
                _scope(view.types),
            ):
                harms.append(_Harm(p, who))
        for service, view in sorted(new.views.items()):
            who = f"{service}'s view {view.class_} reading events published before this change"
            for p in check_fields(
                _field_defs(old.fields),
                old_scope,
                _field_defs(view.fields),
                _scope(view.types),
            ):
                harms.append(_Harm(p, who))
    else:
        for service, view in sorted(old.views.items()):
            who = f"{service}'s sender view {view.class_} built before this change"
            for p in check_fields(
                _field_defs(view.fields),
                _scope(view.types),
                _field_defs(new.fields),
                new_scope,
            ):
                harms.append(_Harm(p, who))
    return harms


def _under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[{")


# -- the structural diff ----------------------------------------------------------------


class _Raw(msgspec.Struct, frozen=True):
    field: str
    rule: str
    #: breaking on its own (by the direction rules), before looking at consumers
    breaking: bool
    message: str
    #: whether consumers' problems at this path make it breaking
    consumers: bool = True
    #: another path whose consumers' problems belong to this change (a wire name's new path)
    alias: str = ""


class _Differ:
    def __init__(self, kind: Kind, old: MessageSnap, new: MessageSnap) -> None:
        self.kind = kind
        self.old_types = old.types
        self.new_types = new.types
        self.old_scope = _scope(old.types)
        self.new_scope = _scope(new.types)
        self.out: list[_Raw] = []

    def add(
        self,
        field: str,
        rule: str,
        breaking: bool,
        message: str,
        consumers: bool = True,
        alias: str = "",
    ) -> None:
        self.out.append(_Raw(field, rule, breaking, message, consumers, alias))

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
        old_values = _values(old, self.old_types)
        new_values = _values(new, self.new_types)
        if old_values is not None and new_values is not None:
            added = [v for v in new_values if v not in old_values]
            removed = [v for v in old_values if v not in new_values]
            what = _describe(old, self.old_types)
            if str(old) != str(new):
                what += f" -> {_describe(new, self.new_types)}"
            if added:
                if self.kind == "event":
                    note = "subscribers built before this change reject the new values"
                else:
                    note = "the owner accepts more values; senders are unaffected"
                self.add(
                    path,
                    "enum-widened",
                    self.kind == "event",
                    f"{what}: adds {_show(added)}; {note}",
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
                    f"{what}: removes {_show(removed)}; {note}",
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
            f"{_describe(old, self.old_types)} -> {_describe(new, self.new_types)}; {note}",
        )


def _struct(expr: TypeExpr, types: Mapping[str, TypeSnap]) -> TypeSnap | None:
    if isinstance(expr, NamedType):
        found = types.get(expr.name)
        if found is not None and found.kind == "struct":
            return found
    return None


def _values(expr: TypeExpr, types: Mapping[str, TypeSnap]) -> tuple[str | int, ...] | None:
    if isinstance(expr, LiteralType):
        return expr.values
    if isinstance(expr, NamedType):
        found = types.get(expr.name)
        if found is not None and found.kind == "enum":
            return tuple(found.values)
    return None


def _describe(expr: TypeExpr, types: Mapping[str, TypeSnap]) -> str:
    if isinstance(expr, NamedType):
        found = types.get(expr.name)
        kind = found.kind if found is not None else "type"
        return f"{kind} {expr.name}"
    return str(expr)


def _show(values: Iterable[str | int]) -> str:
    return ", ".join(repr(v) for v in values)


def _show_default(field: FieldSnap) -> str:
    return msgspec.json.encode(field.default).decode()


# -- per key ----------------------------------------------------------------------------


def _compare_message(key: str, old: MessageSnap, new: MessageSnap) -> list[Change]:
    changes: list[Change] = []
    if old.kind != new.kind:
        return [
            Change(
                key,
                "",
                "kind-changed",
                True,
                f"was {_a(old.kind)} owned by {old.owner}, now {_a(new.kind)} owned by "
                f"{new.owner}; services built from the old schemas send or subscribe to "
                "the wrong thing",
            )
        ]
    if old.owner != new.owner:
        changes.append(
            Change(
                key,
                "",
                "owner-changed",
                True,
                f"owner {old.owner} -> {new.owner}; "
                + (
                    "commands go to another service's channel"
                    if new.kind == "command"
                    else "subscriptions that include or exclude publishers see other messages"
                ),
            )
        )
    if old.class_ != new.class_:
        changes.append(
            Change(
                key,
                "",
                "class-renamed",
                False,
                f"contract class {old.class_} -> {new.class_} (class names are not on the wire)",
            )
        )
    differ = _Differ(new.kind, old, new)
    differ.fields(old.fields, new.fields, "", frozenset())
    harms = _harms(old, new)
    used: set[int] = set()
    for raw in differ.out:
        breaking = raw.breaking
        message = raw.message
        if raw.consumers:
            hits = [
                i
                for i, h in enumerate(harms)
                if _under(h.problem.field, raw.field)
                or (raw.alias and _under(h.problem.field, raw.alias))
            ]
            if hits:
                used.update(hits)
                breaking = True
                whos = sorted({harms[i].who for i in hits})
                if raw.rule == "field-removed":
                    message = f"field removed; required by {', '.join(whos)}"
                else:
                    message += "; " + "; ".join(
                        f"{harms[i].who}: {harms[i].problem.message}" for i in hits
                    )
        changes.append(Change(key, raw.field, raw.rule, breaking, message))
    for index, harm in enumerate(harms):
        if index in used:
            continue
        p = harm.problem
        rule = (
            "required-field-added"
            if p.rule == 1
            else "enum-narrowed"
            if p.rule == 8
            else "type-changed"
        )
        changes.append(Change(key, p.field, rule, True, f"{harm.who}: {p.message}"))
    return changes


def _a(kind: str) -> str:
    return "an event" if kind == "event" else "a command"


def _users(message: MessageSnap) -> str:
    if message.kind == "event":
        names = sorted(message.views)
        return f"subscribed to by {', '.join(names)}" if names else "no subscribers in the snapshot"
    names = sorted(set(message.senders) | set(message.views))
    return f"sent by {', '.join(names)}" if names else "no senders in the snapshot"


def compare(old: Snapshot, new: Snapshot) -> list[Change]:
    """Every change from ``old`` to ``new``, sorted by routing key, breaking ones first."""
    changes: list[Change] = []
    for key in sorted(set(old.messages) | set(new.messages)):
        before = old.messages.get(key)
        after = new.messages.get(key)
        if before is None:
            assert after is not None
            changes.append(
                Change(key, "", "key-added", False, f"new {after.kind} owned by {after.owner}")
            )
        elif after is None:
            changes.append(
                Change(
                    key,
                    "",
                    "key-removed",
                    True,
                    f"{before.kind} owned by {before.owner} is gone ({_users(before)}); "
                    "services built from the old schemas still "
                    + ("send it" if before.kind == "command" else "publish or await it"),
                )
            )
        else:
            changes.extend(_compare_message(key, before, after))
    return sorted(changes, key=lambda c: (c.key, not c.breaking, c.field, c.rule, c.message))


# -- accepting breaking changes on purpose ------------------------------------------------


def _matches(entry: str, change: Change) -> bool:
    key, _, rule = entry.partition(":")
    return key == change.key and (not rule or rule == change.rule)


def accept(changes: Sequence[Change], entries: Iterable[str]) -> list[Change]:
    """Mark breaking changes matched by ``KEY`` or ``KEY:RULE`` entries as accepted."""
    wanted = list(entries)
    return [
        msgspec.structs.replace(c, accepted=True)
        if c.breaking and any(_matches(e, c) for e in wanted)
        else c
        for c in changes
    ]


def unused_accepts(changes: Sequence[Change], entries: Iterable[str]) -> list[str]:
    """Entries that match no breaking change (stale: remove them)."""
    return [e for e in entries if not any(c.breaking and _matches(e, c) for c in changes)]
