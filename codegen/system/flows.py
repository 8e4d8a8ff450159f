"""Who sends and receives what, where: every (channel, service, routing key) of the system.

Derived once from the model with the runtime's own routing rules
(:func:`toolkit.routing.event_channels`), for every description of the
system: the AsyncAPI operations and the Mermaid diagram and tables.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from codegen.model import StructModel, SystemModel
from toolkit.routing import event_channels

__all__ = ["Flow", "channel_messages", "system_flows", "unrouted_events"]


class Flow(msgspec.Struct, frozen=True):
    """One service sending or receiving one routing key on one channel."""

    channel: str
    action: Literal["send", "receive"]
    service: str
    routing_key: str
    kind: Literal["command", "event"]
    #: the generated publisher or handler method
    method: str
    #: the class the service uses for it (its view, or the owner's contract)
    class_name: str
    #: the service's own view struct, None when it uses the contract
    view: StructModel | None


def system_flows(system: SystemModel) -> tuple[Flow, ...]:
    """Every send and receive of the system, sorted by channel, action, service, key."""
    command_channel = dict(system.command_routes)
    owners = {m.routing_key: m.owner for m in system.messages}
    views = {(key, service): view for key, service, view in system.views}
    flows: list[Flow] = []
    for svc in system.services:
        own_routes = [r for r in system.event_routes if r.subscriber == svc.name]
        for pub in svc.publishers:
            if pub.kind == "command":
                channels: list[str] = (
                    [command_channel[pub.target_service]]
                    if pub.target_service in command_channel
                    else []
                )
            else:
                channels = list(event_channels(system.event_routes, pub.routing_key, svc.name))
            for channel in channels:
                flows.append(
                    Flow(
                        channel,
                        "send",
                        svc.name,
                        pub.routing_key,
                        pub.kind,
                        pub.method_name,
                        pub.class_name,
                        views.get((pub.routing_key, svc.name)),
                    )
                )
        for handler in svc.handlers:
            key = handler.routing_key
            if handler.kind == "command":
                channels = [command_channel[svc.name]] if svc.name in command_channel else []
            else:
                channels = list(event_channels(own_routes, key, owners.get(key, "")))
            for channel in channels:
                flows.append(
                    Flow(
                        channel,
                        "receive",
                        svc.name,
                        key,
                        handler.kind,
                        handler.method_name,
                        handler.class_name,
                        views.get((key, svc.name)),
                    )
                )
    return tuple(sorted(flows, key=lambda f: (f.channel, f.action, f.service, f.routing_key)))


def channel_messages(system: SystemModel) -> dict[str, tuple[str, ...]]:
    """Channel name -> every routing key that can arrive on it, sorted."""
    found: dict[str, set[str]] = {c.name: set() for c in system.channels}
    command_channel = dict(system.command_routes)
    for message in system.messages:
        if message.kind == "command":
            channel = command_channel.get(message.owner)
            if channel is not None:
                found.setdefault(channel, set()).add(message.routing_key)
        else:
            for channel in event_channels(system.event_routes, message.routing_key, message.owner):
                found.setdefault(channel, set()).add(message.routing_key)
    return {name: tuple(sorted(keys)) for name, keys in sorted(found.items())}


def unrouted_events(system: SystemModel) -> tuple[str, ...]:
    """Events no channel subscribes to: publishing them sends nothing."""
    arriving = {key for keys in channel_messages(system).values() for key in keys}
    return tuple(
        m.routing_key
        for m in system.messages
        if m.kind == "event" and m.routing_key not in arriving
    )
