"""``toolkit generate [--check]``: schema files -> generated code, or the drift check."""

from __future__ import annotations

import argparse
from typing import Any

from toolkit.commands._common import (
    add_location_flags,
    config_from,
    fail,
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codegen.errors import SchemaErrors
    from codegen.generate import check_files, generate_files, write_files

    config = config_from(args)
    try:
        files = generate_files(config.schemas, config.package)
    except SchemaErrors as exc:
        return fail(exc.render())
    if args.check:
        drift = check_files(files, config.output)
        return report_check(drift, config.output, config.schemas, len(files), "generate")
    return report_written(write_files(files, config.output), config.output, len(files))
