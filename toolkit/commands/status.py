"""``toolkit status``: every channel of the service map, its groups and consumers, on its pipe.

A table for people (80 columns), ``--json`` for scripts, ``--watch`` for a
view that refreshes until Ctrl-C. The figures come from the transport's
:class:`~toolkit.channels.base.ReportsStatus`; the service map says which
groups each channel should have (others are retired, missing ones not
started yet).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from toolkit.commands._common import add_location_flags, config_from, fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args
from toolkit.commands._terminal import columns, shown

if TYPE_CHECKING:
    from toolkit.channels.status import ChannelStatus
    from toolkit.pipes import Pipes
    from toolkit.service_map import ServiceMap

__all__ = ["duration", "register", "render", "report"]

#: seconds between refreshes of --watch given without a number
_WATCH_DEFAULT = 2.0


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="each channel's length, groups (lag, pending, retrying), consumers and dead letters",
        description="For every channel of the service map (or those named): how many entries it "
        "holds, its dead letters, and for each consumer group the messages not yet delivered "
        "(lag), delivered and not settled (pending), waiting for a retry, and the age of the "
        "oldest pending one; then each consumer with what it holds and how long since it last "
        "read. A consumer holding messages and silent for longer than the visibility timeout is "
        "marked dead (its messages wait to be reclaimed); a group the service map does not give "
        "the channel is marked retired. Channels on a pipe that reports no status are named "
        "at the end. Exit 2 when a pipe cannot be reached.",
    )
    parser.add_argument("channels", nargs="*", metavar="CHANNEL", help="only these channels")
    parser.add_argument("--json", action="store_true", help="one JSON document (per refresh)")
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=_WATCH_DEFAULT,
        metavar="SECONDS",
        help=f"refresh every SECONDS ({_WATCH_DEFAULT:g}) until Ctrl-C",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=float,
        default=30.0,
        help="the consumers' visibility timeout, as given to `toolkit run` (30): a consumer "
        "holding messages and idle for longer is dead",
    )
    add_location_flags(parser)
    add_pipe_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.base import TransportError
    from toolkit.commands._app import AppError, service_map_of
    from toolkit.pipe_settings import BindingError, PipeSettings
    from toolkit.pipes import Pipes

    if args.watch is not None and args.watch <= 0:
        return fail("toolkit status: --watch needs a positive number of seconds")
    config = config_from(args)
    try:
        service_map = service_map_of(config.package, config.output)
        if args.visibility_timeout <= 0:
            raise ValueError("--visibility-timeout must be positive")
        settings = PipeSettings(prefix=args.prefix, visibility_timeout=args.visibility_timeout)
        bindings = bindings_from_args(args, config)
        bindings.check_channels(service_map.channels)
    except (AppError, ValueError) as exc:
        return fail(f"toolkit status: {exc}")
    unknown = [c for c in args.channels if c not in service_map.channels]
    if unknown:
        known = ", ".join(service_map.channels) or "none"
        return fail(f"toolkit status: no channel {', '.join(unknown)} in the service map ({known})")
    names = list(args.channels) or list(service_map.channels)

    async def main() -> int:
        pipes = Pipes(bindings, settings)
        try:
            for name in names:
                # A pipe that cannot list a channel's groups (RabbitMQ) looks for these.
                pipes.expect_groups(name, _expected(service_map, name))
            shown_names = [n for n in names if pipes.reports_status(n)]
            await pipes.check(shown_names)
            if args.watch is None:
                statuses = await _read(pipes, shown_names)
                _print(statuses, service_map, args.json)
            else:
                await _watch(pipes, shown_names, service_map, args.json, args.watch)
            silent = [n for n in names if n not in shown_names]
            if silent:
                print(
                    "no status from the pipe of "
                    + ", ".join(silent)
                    + f": {pipes.describe(silent)}",
                    file=sys.stderr,
                )
            return 0
        finally:
            await pipes.close()

    try:
        return asyncio.run(main())
    except (TransportError, BindingError) as exc:
        return fail(f"toolkit status: {exc}")
    except KeyboardInterrupt:
        return 0


async def _read(pipes: Pipes, names: Sequence[str]) -> list[ChannelStatus]:
    return [await pipes.status(name) for name in names]


def _print(statuses: list[ChannelStatus], service_map: ServiceMap, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.encode(report(statuses, service_map)).decode() + "\n")
    else:
        sys.stdout.write("\n".join(render(statuses, service_map)) + "\n")
    sys.stdout.flush()


async def _watch(
    transport: Pipes, names: Sequence[str], service_map: ServiceMap, as_json: bool, every: float
) -> int:
    from toolkit.channels.base import TransportError

    while True:
        try:
            statuses = await _read(transport, names)
        except TransportError as exc:
            # A live view rides out an outage: it says so and tries again.
            message = f"a pipe is unreachable, retrying every {every:g}s: {exc}"
            if as_json:
                print(msgspec.json.encode({"error": str(exc)}).decode(), flush=True)
            else:
                sys.stdout.write("\x1b[H\x1b[2J" + shown(message) + "\n")
                sys.stdout.flush()
        else:
            if as_json:
                _print(statuses, service_map, True)
            else:
                stamp = time.strftime("%H:%M:%S")
                lines = render(statuses, service_map)
                lines.append(f"every {every:g}s, {stamp}; Ctrl-C to stop")
                # Home and clear, then the frame: one write, so the view does not flicker.
                sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
                sys.stdout.flush()
        await asyncio.sleep(every)


def duration(seconds: float | None) -> str:
    """A short age for a table cell: ``850ms``, ``12.3s``, ``4m05s``, ``3h07m``, ``2d04h``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _expected(service_map: ServiceMap, channel: str) -> tuple[str, ...]:
    spec = service_map.channels.get(channel)
    return tuple(spec.consumers) if spec is not None else ()


def render(statuses: Sequence[ChannelStatus], service_map: ServiceMap) -> list[str]:
    """The table: per channel a line, its groups, its consumers."""
    lines: list[str] = []
    for status in statuses:
        if lines:
            lines.append("")
        head = f"{status.channel}: {status.length} entries, {status.dead_letters} dead letter"
        lines.append(shown(head + ("" if status.dead_letters == 1 else "s")))
        expected = _expected(service_map, status.channel)
        rows: list[tuple[str, ...]] = [("  GROUP", "LAG", "PENDING", "RETRYING", "OLDEST", "")]
        found = {g.name for g in status.groups}
        for group in status.groups:
            note = "" if group.name in expected else "retired"
            rows.append(
                (
                    "  " + group.name,
                    "?" if group.lag is None else str(group.lag),
                    str(group.pending) if group.pending_known else "?",
                    str(group.retrying),
                    duration(group.oldest_pending_age),
                    note,
                )
            )
        for name in expected:
            if name not in found:
                rows.append(("  " + name, "-", "-", "-", "-", "not started (no group yet)"))
        if len(rows) > 1:
            lines.extend(line.rstrip() for line in columns(rows, right=(1, 2, 3, 4)))
        consumers: list[tuple[str, ...]] = [("  CONSUMER", "GROUP", "PENDING", "IDLE", "")]
        dead = 0
        for group in status.groups:
            for consumer in group.consumers:
                state = ""
                if consumer.dead(status.visibility_timeout):
                    state = "dead"
                    dead += 1
                elif consumer.gone(status.visibility_timeout):
                    state = "gone"
                consumers.append(
                    (
                        "  " + consumer.name,
                        group.name,
                        str(consumer.pending),
                        duration(consumer.idle),
                        state,
                    )
                )
            if group.consumer_count is not None:
                # The pipe counts its consumers but cannot name them (RabbitMQ).
                consumers.append((f"  ({group.consumer_count} unnamed)", group.name, "?", "-", ""))
        if len(consumers) > 1:
            lines.extend(line.rstrip() for line in columns(consumers, right=(2, 3)))
        if dead:
            lines.append(
                f"  dead: idle over {duration(status.visibility_timeout)} holding messages; "
                "another consumer reclaims them"
            )
    return lines


def report(statuses: Sequence[ChannelStatus], service_map: ServiceMap) -> dict[str, Any]:
    """The ``--json`` document: each status with the service map's judgement added
    (``retired`` groups, ``missing_groups``, ``dead`` and ``gone`` consumers)."""
    channels = []
    for status in statuses:
        expected = _expected(service_map, status.channel)
        data: dict[str, Any] = msgspec.to_builtins(status)
        for group_data, group in zip(data["groups"], status.groups, strict=True):
            group_data["retired"] = group.name not in expected
            for consumer_data, consumer in zip(
                group_data["consumers"], group.consumers, strict=True
            ):
                consumer_data["dead"] = consumer.dead(status.visibility_timeout)
                consumer_data["gone"] = consumer.gone(status.visibility_timeout)
        found = {g.name for g in status.groups}
        data["missing_groups"] = [name for name in expected if name not in found]
        channels.append(data)
    return {"channels": channels}
