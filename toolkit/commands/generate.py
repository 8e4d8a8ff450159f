"""``toolkit generate [--check]``: schema files -> generated code, or the drift check."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from toolkit.commands._common import add_location_flags, config_from, display, fail


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
    out = config.output
    if args.check:
        drift = check_files(files, out)
        if drift.clean:
            print(
                f"{display(out)} is up to date with {display(config.schemas)} ({len(files)} files)"
            )
            return 0
        sys.stdout.write(drift.diff)
        for label, paths in (
            ("stale", drift.changed),
            ("missing", drift.missing),
            ("extra", drift.extra),
        ):
            for path in paths:
                print(f"{label}: {display(out / path)}", file=sys.stderr)
        print(
            f"{display(out)} has drifted from {display(config.schemas)}: {len(drift.changed)} stale, "
            f"{len(drift.missing)} missing, {len(drift.extra)} extra; run `toolkit generate`",
            file=sys.stderr,
        )
        return 1
    drift = write_files(files, out)
    if drift.clean:
        print(f"no changes: {len(files)} files in {display(out)} are up to date")
        return 0
    for label, paths in (
        ("updated", drift.changed),
        ("created", drift.missing),
        ("removed", drift.extra),
    ):
        for path in paths:
            print(f"{label}: {display(out / path)}")
    return 0
