"""Messages: the contracts a service owns, and the class any message table declares."""

from __future__ import annotations

from typing import Any, Literal

from codegen.build.fields import build_fields
from codegen.build.names import check_routing_key, claim_class, method_name
from codegen.build.state import Owned, ServiceState, SystemState, field_defs
from codegen.model import HandlerMethod, PublisherMethod, StructModel
from codegen.schema import CommandDecl, EventDecl, SendDecl, SubscribeDecl
from toolkit.durations import parse_window
from toolkit.priority import MAX_PRIORITY, MIN_PRIORITY

__all__ = ["build_owned_messages", "dedup_window", "message_struct"]


def build_owned_messages(state: SystemState, svc: ServiceState) -> None:
    """``[commands.*]`` and ``[events.*]``: the contracts ``svc`` owns, with their methods."""
    decl = svc.decl
    groups: list[tuple[Literal["command", "event"], str, Any]] = [
        ("command", "commands", decl.commands),
        ("event", "events", decl.events),
    ]
    for kind, table, entries in groups:
        for key, mdecl in sorted(entries.items()):
            path = (table, key)
            if not check_routing_key(
                svc,
                path,
                key,
                "use dot-separated words of letters, digits, '_' or '-', e.g. 'ticket.create'",
            ):
                continue
            existing = state.owned.get(key)
            if existing is not None:
                other_kind, other = existing.kind, existing.owner
                where = f"{other.file.display} ({other.name})"
                if kind == "command" and other_kind == "command":
                    message = f"command {key!r} is owned by two services: here and in {where}"
                    hint = "a command has one owner, the service that handles it; remove one declaration"
                else:
                    message = (
                        f"duplicate routing key {key!r}: also declared as {other_kind} in {where}"
                    )
                    hint = "a routing key names one message; rename one of them"
                svc.file.error(path, message, hint)
                continue
            note = f"{kind.capitalize()} ``{key}``: the contract, owned by {svc.name}."
            struct = message_struct(svc, mdecl, "contract", key, path, note)
            if struct is None:
                state.unbuilt[key] = (kind, svc)
                continue
            svc.contracts.append(struct)
            priority = _priority(svc, mdecl, path)
            state.owned[key] = Owned(kind, svc, struct, field_defs(struct.fields), priority)
            if kind == "command":
                svc.handlers.append(
                    HandlerMethod(
                        method_name("on", key),
                        key,
                        "command",
                        mdecl.class_,
                        mdecl.description,
                        dedup_window(svc, mdecl.deduplicate, path),
                    )
                )
            else:
                svc.publishers.append(
                    PublisherMethod(
                        method_name("publish", key),
                        key,
                        "event",
                        mdecl.class_,
                        "",
                        mdecl.description,
                        priority=priority,
                    )
                )


def dedup_window(svc: ServiceState, text: str | None, path: tuple[str, ...]) -> float | None:
    """The seconds of a table's ``deduplicate`` window; None without one (or, reported,
    a bad one)."""
    if text is None:
        return None
    try:
        return parse_window(text)
    except ValueError as exc:
        svc.file.error(
            (*path, "deduplicate"),
            f"deduplicate {exc}",
            'e.g. deduplicate = "24h": ids handled within a day are not handled again',
        )
        return None


def _priority(svc: ServiceState, decl: CommandDecl | EventDecl, path: tuple[str, ...]) -> int:
    """The declared default priority; 0 (reported) when it is out of range."""
    if MIN_PRIORITY <= decl.priority <= MAX_PRIORITY:
        return decl.priority
    svc.file.error(
        (*path, "priority"),
        f"priority must be from {MIN_PRIORITY} to {MAX_PRIORITY}, not {decl.priority}",
        f"e.g. priority = 5 ({MAX_PRIORITY} is the most urgent; leave it out for {MIN_PRIORITY})",
    )
    return 0


def message_struct(
    svc: ServiceState,
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
    claimed = claim_class(svc, decl.class_, (*path, "class"))
    fields = build_fields(svc, decl.fields, (*path, "fields"))
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


def _struct_doc(description: str, note: str) -> str:
    text = description.strip()
    return f"{text}\n\n{note}" if text else note
