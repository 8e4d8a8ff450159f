"""``toolkit generate [--check] [--strict]``: schema files -> generated code, or the drift check.

Schema warnings are printed (stderr) and do not stop generation, except
under ``--strict`` (exit 2, nothing written)."""

from __future__ import annotations

import argparse
from typing import Any

from toolkit.commands._common import (
    add_location_flags,
    add_strict_flag,
    config_from,
    load_schemas,
    report_check,
    report_written,
)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "generate",
        help="generate typed code from the schema files",
        description="Generate messages, publishers, handler Protocols and the service map from schema files.",
    )
    add_location_flags(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when the output folder is stale, missing or has extra files",
    )
    add_strict_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codegen.generate import check_files, render_files, write_files

    config = config_from(args)
    system = load_schemas(config, args.strict)
    if isinstance(system, int):
        return system
    files = render_files(system)
    if args.check:
        drift = check_files(files, config.output)
        return report_check(drift, config.output, config.schemas, len(files), "generate")
    return report_written(write_files(files, config.output), config.output, len(files))
