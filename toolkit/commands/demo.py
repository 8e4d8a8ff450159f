"""``toolkit demo``: generate if needed, then run the system in memory, printing each hop."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from toolkit.commands._common import add_location_flags, config_from, load_schemas


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the services in memory with sample messages, printing each hop",
        description="Generate (if needed), then send one sample of every command and event in memory "
        "and print each hop: service -> channel -> handler. Needs no server.",
    )
    add_location_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codegen.generate import render_files, write_files
    from toolkit.commands._demo import run_demo

    config = config_from(args)
    system = load_schemas(config)
    if isinstance(system, int):
        return system
    files = render_files(system)
    drift = write_files(files, config.output)
    if not drift.clean:
        print(f"generated {len(drift.changed) + len(drift.missing)} files into {config.output}")
    asyncio.run(run_demo(config.output, config.package))
    return 0
