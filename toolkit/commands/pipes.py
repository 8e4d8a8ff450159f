"""``toolkit pipes [--check]``: which pipe carries each channel of the service map."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import add_location_flags, config_from, fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args
from toolkit.commands._terminal import columns

if TYPE_CHECKING:
    from toolkit.pipes import Pipes


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "pipes",
        help="show which pipe carries each channel; --check that each answers",
        description="Each channel of the service map with the pipe that carries it (from "
        "[tool.toolkit] pipes and channels, TOOLKIT_PIPE_<NAME>, TOOLKIT_CHANNEL_<CHANNEL> and "
        "the flags; passwords hidden). --check connects to each pipe in use (creating the "
        "PostgreSQL pipe's tables if missing). Exit status: 0; 2 on a binding mistake or a pipe "
        "that does not answer.",
    )
    parser.add_argument(
        "--check", action="store_true", help="connect to each pipe in use and report"
    )
    add_location_flags(parser)
    add_pipe_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.commands._app import AppError, service_map_of
    from toolkit.pipe_settings import BindingError, PipeSettings, redact
    from toolkit.pipes import Pipes

    config = config_from(args)
    try:
        service_map = service_map_of(config.package, config.output)
        bindings = bindings_from_args(args, config)
        bindings.check_channels(service_map.channels)
    except (AppError, BindingError) as exc:
        return fail(f"toolkit pipes: {exc}")
    rows: list[list[str | bytes]] = [["CHANNEL", "KIND", "CONSUMERS", "PIPE", "URL"]]
    for name, spec in sorted(service_map.channels.items()):
        pipe = bindings.pipe_of(name)
        consumers = ", ".join(spec.consumers) or "-"
        rows.append([name, spec.kind, consumers, pipe, redact(bindings.pipes[pipe])])
    for line in columns(rows):
        print(line)
    if not args.check:
        return 0
    pipes = Pipes(bindings, PipeSettings(prefix=args.prefix))
    return asyncio.run(_check(pipes, sorted(service_map.channels)))


async def _check(pipes: Pipes, channels: list[str]) -> int:
    from toolkit.channels.base import TransportError

    failed = 0
    try:
        for name in sorted({pipes.bindings.pipe_of(c) for c in channels}):
            carried = [c for c in channels if pipes.bindings.pipe_of(c) == name]
            installed = ""
            try:
                await pipes.check(carried[:1])
                install = getattr(pipes.pipe(name), "install", None)
                if callable(install) and await install():
                    installed = ", its tables created"
            except TransportError as exc:
                failed += 1
                print(f"pipe {name}: FAILED: {exc}")
            else:
                print(f"pipe {name}: ok ({len(carried)} channel(s){installed})")
    finally:
        await pipes.close()
    return 2 if failed else 0
