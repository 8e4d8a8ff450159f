"""Warnings about subscriptions: schemas that work, but probably not as meant.

Checked once the system has no errors, with the runtime's own matching rules
(:class:`toolkit.routing.KeyPattern`, :meth:`toolkit.routing.EventRoute.accepts_publisher`):

* a subscription key (``channels.NAME.subscribe``) that matches no published
  event, or only events its publisher filter leaves out: the channel receives
  nothing through it;
* an event a channel receives for its service, through a pattern, that the
  service declares no ``[subscribes."key"]`` for: each one is written to the
  channel, then acknowledged and skipped unread by the consumer (see
  docs/routing.md), so the service likely forgot a handler or subscribes too
  widely;
* an event a service handles that reaches it through two channels (two of its
  subscriptions match it, from its publisher): each channel's consumer handles
  it, so it is handled twice.
"""

from __future__ import annotations

from codegen.build.state import ServiceState, SystemState
from toolkit.routing import EventRoute, KeyPattern, event_channels

__all__ = ["warn_subscriptions"]


def warn_subscriptions(state: SystemState) -> None:
    """Add the warnings of every service's channel subscriptions to its file."""
    events = sorted((k, o.owner.name) for k, o in state.owned.items() if o.kind == "event")
    routes = {(r.channel, r.subscriber): r for r in state.routes}
    for svc in sorted(state.services.values(), key=lambda s: s.name):
        for channel, decl in sorted(svc.decl.channels.items()):
            route = routes.get((channel, svc.name))
            if route is not None:
                _warn_route(svc, channel, decl.subscribe, route, events)
        _warn_twice_received(state, svc)


def _warn_twice_received(state: SystemState, svc: ServiceState) -> None:
    own = [r for r in state.routes if r.subscriber == svc.name]
    for key in sorted(svc.decl.subscribes):
        owned = state.owned.get(key)
        if owned is None or owned.kind != "event":
            continue
        publisher = owned.owner.name
        channels = event_channels(own, key, publisher)
        if len(channels) > 1:
            named = ", ".join(repr(c) for c in channels[:-1]) + f" and {channels[-1]!r}"
            svc.file.warn(
                ("subscribes", key),
                f"{svc.name} receives event {key!r} from {publisher} on channels {named}: "
                "the consumer of each handles it, so it is handled "
                f"{len(channels)} times",
                "subscribe to it on one channel only (remove or narrow the subscription "
                "key of the others)",
            )


def _warn_route(
    svc: ServiceState,
    channel: str,
    patterns: list[str],
    route: EventRoute,
    events: list[tuple[str, str]],
) -> None:
    skipped_already: set[str] = set()
    for index, pattern in enumerate(patterns):
        path = ("channels", channel, "subscribe", index)
        matcher = KeyPattern(pattern)
        matched = [(key, owner) for key, owner in events if matcher.matches(key)]
        received = [key for key, owner in matched if route.accepts_publisher(owner)]
        if not received:
            svc.file.warn(path, *_nothing_received(pattern, matched, route, events))
            continue
        skipped = [
            key for key in received if key not in svc.decl.subscribes and key not in skipped_already
        ]
        skipped_already.update(skipped)
        if skipped:
            handled = [k for k in received if k in svc.decl.subscribes]
            keys = ", ".join(repr(k) for k in skipped)
            one = len(skipped) == 1
            through = "" if "*" not in pattern else f" through {pattern!r}"
            svc.file.warn(
                path,
                f"{svc.name} receives event{'' if one else 's'} {keys} on channel {channel!r}"
                f"{through} but declares no [subscribes] table for {'it' if one else 'them'}: "
                f"{'it is' if one else 'they are'} acknowledged and skipped unread",
                (
                    f'add [subscribes."{skipped[0]}"] to handle it'
                    if one
                    else f'add a [subscribes."KEY"] table for each (e.g. [subscribes."{skipped[0]}"])'
                )
                + (
                    f", or replace {pattern!r} by the keys {svc.name} handles ("
                    + ", ".join(f'"{k}"' for k in handled)
                    + ")"
                    if handled
                    else ", or remove the subscription key"
                ),
            )


def _nothing_received(
    pattern: str, matched: list[tuple[str, str]], route: EventRoute, events: list[tuple[str, str]]
) -> tuple[str, str]:
    """The message and hint for a subscription key through which nothing arrives."""
    if matched:
        which = (
            "include_publishers" if route.include_publishers is not None else "exclude_publishers"
        )
        found = ", ".join(f"{key!r} (from {owner})" for key, owner in matched)
        return (
            f"subscription key {pattern!r} receives nothing: {which} leaves out every event "
            f"it matches: {found}",
            f"change {which}, or remove the subscription key",
        )
    published = ", ".join(key for key, _ in events) or "none"
    return (
        f"subscription key {pattern!r} matches no event any service publishes",
        f"check its spelling, or remove it; published events: {published}",
    )
