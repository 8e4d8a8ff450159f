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

import msgspec

from codegen.contracts._diff import Differ, harms, under
from codegen.contracts.snapshot import MessageSnap, Snapshot

__all__ = [
    "BREAKING_RULES",
    "CHANGE_RULES",
    "Change",
    "accept",
    "compare",
    "unused_accepts",
]

#: Every kind of change, safe or breaking: rule slug -> title. The slugs are what
#: ``--allow-breaking KEY:RULE`` names.
CHANGE_RULES: Mapping[str, str] = {
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
    differ = Differ(new.kind, old, new)
    differ.fields(old.fields, new.fields, "", frozenset())
    found = harms(old, new)
    used: set[int] = set()
    for raw in differ.out:
        breaking = raw.breaking
        message = raw.message
        if raw.consumers:
            hits = [
                i
                for i, h in enumerate(found)
                if under(h.problem.field, raw.field)
                or (raw.alias and under(h.problem.field, raw.alias))
            ]
            if hits:
                used.update(hits)
                breaking = True
                whos = sorted({found[i].who for i in hits})
                if raw.rule == "field-removed":
                    message = f"field removed; required by {', '.join(whos)}"
                else:
                    message += "; " + "; ".join(
                        f"{found[i].who}: {found[i].problem.message}" for i in hits
                    )
        changes.append(Change(key, raw.field, raw.rule, breaking, message))
    for index, harm in enumerate(found):
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
