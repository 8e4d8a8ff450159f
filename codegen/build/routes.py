"""Routing keys a service uses but does not own: the events it subscribes to, the commands it sends.

A subscription must name a published event that one of the service's
channels receives from its publisher; a send must name a command its target
owns. A view (the service's own class for the key) must be compatible with
the owner's contract, in the direction the message travels.
"""

from __future__ import annotations

from codegen.build.compatibility import check_compat
from codegen.build.messages import dedup_window, message_struct
from codegen.build.names import check_routing_key, local_name, method_name
from codegen.build.state import ServiceState, SystemState, field_defs
from codegen.model import ForeignClass, HandlerMethod, PublisherMethod
from toolkit.routing import event_channels

__all__ = ["build_sends", "build_subscriptions"]


def build_subscriptions(state: SystemState, svc: ServiceState) -> None:
    """``[subscribes.*]``: each event's view and handler method."""
    own_routes = [r for r in state.routes if r.subscriber == svc.name]
    for key, sdecl in sorted(svc.decl.subscribes.items()):
        path = ("subscribes", key)
        if not check_routing_key(
            svc,
            path,
            key,
            "subscribe to a concrete key such as 'user.registered'; patterns belong in channels.*.subscribe",
        ):
            continue
        owned = state.owned.get(key)
        if owned is None and state.unbuilt.get(key, ("", None))[0] == "event":
            # The owner's contract has an error of its own: check only this view.
            message_struct(svc, sdecl, "view", key, path, "")
            continue
        if owned is None or owned.kind != "event":
            what = "is a command, not an event" if owned else "is not published by any service"
            events = sorted(k for k, v in state.owned.items() if v.kind == "event")
            svc.file.error(
                path,
                f"event {key!r} {what}",
                f"published events: {', '.join(events) or 'none'}",
            )
            continue
        owner, contract = owned.owner, owned.contract
        if not event_channels(own_routes, key, owner.name):
            svc.file.error(
                path,
                f"event {key!r} never reaches {svc.name}: no channel it consumes subscribes to it"
                f" (from publisher {owner.name})",
                f'add "{key}" (or a pattern that matches it) to subscribe = [...] of one of its channels',
            )
        note = f"Event ``{key}`` as {svc.name} reads it.\n\nContract: {owner.name}.{contract.class_name}."
        view = message_struct(svc, sdecl, "view", key, path, note)
        if view is None:
            continue
        check_compat(
            key,
            writer=(owner, contract, owned.defs),
            reader=(svc, view, field_defs(view.fields)),
            reader_path=path,
        )
        svc.views.append(view)
        svc.handlers.append(
            HandlerMethod(
                method_name("on", key),
                key,
                "event",
                sdecl.class_,
                sdecl.description,
                dedup_window(svc, sdecl.deduplicate, path),
            )
        )


def build_sends(state: SystemState, svc: ServiceState) -> None:
    """``[sends.*]``: each command's publisher method, through the contract or a view."""
    foreign_sends: list[tuple[str, ForeignClass]] = []
    for key, sdecl in sorted(svc.decl.sends.items()):
        path = ("sends", key)
        target = state.services.get(sdecl.service)
        if target is None:
            svc.file.error(
                path + ("service",),
                f"command {key!r} is sent to service {sdecl.service!r}, which does not exist",
                f"known services: {', '.join(sorted(state.services))}",
            )
            continue
        owned = state.owned.get(key)
        if owned is None and state.unbuilt.get(key) == ("command", target):
            # The owner's contract has an error of its own: check only this view.
            if sdecl.class_ is not None:
                message_struct(svc, sdecl, "view", key, path, "")
            continue
        if owned is None or owned.kind != "command" or owned.owner is not target:
            owner_note = (
                f"it is owned by {owned.owner.name} as {'a command' if owned.kind == 'command' else 'an event'}"
                if owned
                else "no service declares it"
            )
            commands = sorted(
                k for k, v in state.owned.items() if v.kind == "command" and v.owner is target
            )
            svc.file.error(
                path,
                f"{target.name} accepts no command {key!r}: {owner_note}",
                f"commands {target.name} accepts: {', '.join(commands) or 'none'}",
            )
            continue
        owner, contract = owned.owner, owned.contract
        if sdecl.class_ is None:
            if sdecl.fields:
                svc.file.error(
                    path + ("fields",),
                    "fields given without class",
                    'name your view: class = "..."',
                )
                continue
            # Named once every view of the service has claimed its class name.
            foreign_sends.append((key, ForeignClass(owner.name, contract.class_name)))
            continue
        note = f"Command ``{key}`` as {svc.name} sends it.\n\nContract: {owner.name}.{contract.class_name}."
        view = message_struct(svc, sdecl, "view", key, path, note)
        if view is None:
            continue
        # The sender writes, the owner reads.
        check_compat(
            key,
            writer=(svc, view, field_defs(view.fields)),
            reader=(owner, contract, owned.defs),
            reader_path=path,
            sender_view=True,
        )
        svc.views.append(view)
        svc.publishers.append(_send(state, svc, key, sdecl.class_))
    for key, foreign in foreign_sends:
        class_name = local_name(svc, foreign)
        if class_name is None:
            svc.file.error(
                ("sends", key),
                f"{foreign.service}'s class {foreign.class_name} cannot be imported here: its name "
                "and its name prefixed with its service are both taken",
                'declare a view of your own: class = "..." with the fields you send',
            )
            continue
        svc.publishers.append(_send(state, svc, key, class_name, foreign))


def _send(
    state: SystemState,
    svc: ServiceState,
    key: str,
    class_name: str,
    foreign: ForeignClass | None = None,
) -> PublisherMethod:
    target = state.owned[key].owner
    sdecl = svc.decl.sends[key]
    return PublisherMethod(
        method_name("send", key),
        key,
        "command",
        class_name,
        target.name,
        sdecl.description or target.decl.commands[key].description,
        foreign,
        target.decl.commands[key].priority,
    )
