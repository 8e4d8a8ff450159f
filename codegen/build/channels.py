"""Channels and the service map: which channel carries each service's commands, and event routes."""

from __future__ import annotations

from codegen.build.names import CHANNEL_NAME, KEY_PATTERN
from codegen.build.state import ServiceState, SystemState
from toolkit.routing import ChannelSpec, EventRoute

__all__ = ["build_channels"]


def build_channels(
    state: SystemState,
) -> tuple[tuple[ChannelSpec, ...], tuple[tuple[str, str], ...], tuple[EventRoute, ...]]:
    """Every channel, each service's command channel, and the event routes (sorted).

    A channel may be declared by several services when it is a stream (one
    consumer group each); a queue has one consuming service.
    """
    seen: dict[str, tuple[str, ServiceState]] = {}
    consumers: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    command_routes: dict[str, str] = {}
    routes: list[EventRoute] = []
    for svc in sorted(state.services.values(), key=lambda s: s.name):
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
                    if publisher not in state.services:
                        svc.file.error(
                            path + (listname, index),
                            f"{listname} names unknown service {publisher!r}",
                            f"known services: {', '.join(sorted(state.services))}",
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
    return channels, tuple(sorted(command_routes.items())), tuple(routes)
