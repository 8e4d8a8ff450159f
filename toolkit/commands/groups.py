"""``toolkit groups list [CHANNEL]`` and ``toolkit groups remove CHANNEL GROUP``: consumer
groups on Redis, and the retired ones (their service no longer consumes the channel)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import add_location_flags, config_from, fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args

if TYPE_CHECKING:
    from toolkit.channels.redis import RedisTransport
    from toolkit.pipes import Pipes
    from toolkit.service_map import ServiceMap

__all__ = ["consumers_of", "register"]


def consumers_of(service_map: ServiceMap, channel: str) -> frozenset[str]:
    """The groups the service map gives ``channel`` (its consuming services); others are retired."""
    spec = service_map.channels.get(channel)
    return frozenset(spec.consumers) if spec is not None else frozenset()


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "groups",
        help="list a channel's consumer groups, remove retired ones (Redis)",
        description="Consumer groups of the channels carried by Redis pipes. A group is retired when its service no "
        "longer consumes the channel in the service map: it never reads again, and safe trimming "
        "(toolkit run --trim) keeps every entry it has not read until it is removed.",
    )
    actions = parser.add_subparsers(dest="groups_action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="groups with their consumers, pending, delayed and lag; retired ones marked",
        description="Each group of CHANNEL (default: every channel of the service map and every "
        "stream under the prefix): consumers, pending messages, retries waiting, lag (entries "
        "not yet delivered to it), and whether the service map still uses it.",
    )
    listing.add_argument("channel", nargs="?", help="channel name, e.g. ticket_commands")
    remove = actions.add_parser(
        "remove",
        help="remove a retired group (its pending list and delay set go with it)",
        description="Remove GROUP from CHANNEL with its pending list and delay set, so that it "
        "no longer holds back trimming. Refuses a group the service map still uses unless --force "
        "(its service would lose its pending messages and start again from the oldest entry).",
    )
    remove.add_argument("channel", help="channel name, e.g. ticket_commands")
    remove.add_argument("group", help="group name (the consuming service's name)")
    remove.add_argument(
        "--force", action="store_true", help="remove it even if the service map still uses it"
    )
    for p in (listing, remove):
        add_location_flags(p)
        add_pipe_flags(p)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.base import TransportError
    from toolkit.commands._app import AppError, service_map_of
    from toolkit.pipe_settings import BindingError, PipeSettings
    from toolkit.pipes import Pipes

    config = config_from(args)
    try:
        service_map: ServiceMap | None = service_map_of(config.package, config.output)
    except AppError as exc:
        if args.groups_action == "list" or not args.force:
            return fail(
                f"toolkit groups: {exc} (the service map tells which groups are retired; "
                "pass --schemas/--out/--package, or run where `toolkit generate` wrote it)"
            )
        service_map = None
    try:
        pipes = Pipes(bindings_from_args(args, config), PipeSettings(prefix=args.prefix))
        return asyncio.run(_run(args, pipes, service_map))
    except (TransportError, BindingError) as exc:
        return fail(f"toolkit groups: {exc}")


async def _run(args: argparse.Namespace, pipes: Pipes, service_map: ServiceMap | None) -> int:
    from toolkit.pipe_settings import BindingError

    try:
        if args.groups_action == "list":
            assert service_map is not None
            return await _list(pipes, service_map, args.channel)
        transport = _redis(pipes, args.channel)
        if transport is None:
            raise BindingError(_not_redis(pipes, args.channel))
        await transport.check()
        return await _remove(transport, service_map, args.channel, args.group, args.force)
    finally:
        await pipes.close()


def _redis(pipes: Pipes, channel: str) -> RedisTransport | None:
    """The Redis transport carrying ``channel``; None when another kind of pipe carries it."""
    from toolkit.pipe_settings import pipe_module

    if pipe_module(pipes.bindings.url_of(channel)) != "toolkit.channels.redis.pipe":
        return None
    transport: RedisTransport = pipes.transport(channel)  # type: ignore[assignment]
    return transport


def _not_redis(pipes: Pipes, channel: str) -> str:
    return (
        f"consumer groups are Redis's, and {channel!r} is carried by "
        f"{pipes.describe([channel])}; its pipe's own tools show its consumers"
    )


async def _list(pipes: Pipes, service_map: ServiceMap, channel: str | None) -> int:
    from toolkit.pipe_settings import BindingError

    on: dict[str, RedisTransport] = {}
    if channel is not None:
        transport = _redis(pipes, channel)
        if transport is None:
            raise BindingError(_not_redis(pipes, channel))
        on[channel] = transport
    else:
        for name in service_map.channels:
            found = _redis(pipes, name)
            if found is not None:
                on[name] = found
        default = _redis(pipes, "")  # what the default pipe holds beyond the map's channels
        if default is not None:
            await default.check()
            for name in await default.stream_channels():
                on.setdefault(name, default)
    for transport in {id(t): t for t in on.values()}.values():
        await transport.check()
    rows: list[tuple[str, ...]] = []
    retired = 0
    for name in sorted(on):
        groups = await on[name].groups(name)
        if not groups and channel is not None:
            print(f"no consumer groups on {name}")
            return 0
        used = consumers_of(service_map, name)
        for g in groups:
            status = "in use" if g.name in used else "retired"
            retired += g.name not in used
            lag = "?" if g.lag is None else str(g.lag)
            rows.append(
                (name, g.name, str(g.consumers), str(g.pending), str(g.delayed), lag, status)
            )
    if not rows:
        print("no consumer groups")
        return 0
    header = ("CHANNEL", "GROUP", "CONSUMERS", "PENDING", "DELAYED", "LAG", "STATUS")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if i in (0, 1, 6) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    if retired:
        print(
            f"{retired} retired group(s): the service map gives their channel no such consumer, "
            "and they hold back trimming. Remove one with `toolkit groups remove CHANNEL GROUP`."
        )
    return 0


async def _remove(
    transport: RedisTransport,
    service_map: ServiceMap | None,
    channel: str,
    group: str,
    force: bool,
) -> int:
    if service_map is not None and group in consumers_of(service_map, channel) and not force:
        return fail(
            f"toolkit groups remove: {group!r} consumes {channel!r} in the service map; removing "
            "its group loses its pending messages and its place in the stream (its next consumer "
            "starts again from the oldest entry). Pass --force to remove it anyway."
        )
    info = next((g for g in await transport.groups(channel) if g.name == group), None)
    if info is None or not await transport.remove_group(channel, group):
        return fail(f"toolkit groups remove: no group {group!r} on {channel!r}")
    print(
        f"removed group {group} from {channel} "
        f"({info.pending} pending, {info.delayed} waiting for a retry, {info.consumers} consumer(s))"
    )
    return 0
