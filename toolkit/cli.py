"""The ``toolkit`` command line. Each subcommand lives in ``toolkit.commands.<name>``.

Exit status: 0 success, 1 a check found a difference (drift, breaking
change), 2 bad input (schema errors, bad options), 130 interrupted, 141
standard output closed early (``toolkit … | head -1``: quietly, like a
program stopped by SIGPIPE).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from toolkit.commands._terminal import SafeFormatter

__all__ = ["main"]

# Subcommand modules, in the order `toolkit --help` lists them. Each exposes
# register(subparsers) which adds a parser with `func=run(args) -> int`.
_COMMANDS = (
    "generate",
    "demo",
    "schema_json",
    "docs",
    "scaffold",
    "check",
    "run",
    "pipes",
    "dlq",
    "scheduled",
    "groups",
    "status",
    "relay",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolkit",
        description="Smart endpoints, dumb pipes: schema files -> typed code -> a distributed bus.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"toolkit.commands.{name}").register(sub)
    # `-v` also where users type it, after the subcommand (`toolkit run ... -v`); SUPPRESS
    # keeps a subcommand without it from resetting a count given before the subcommand.
    for command in sub.choices.values():
        command.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="more logging (-vv for debug)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            # Inside the try: a reader gone (`| head -1`) is noticed here, not at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # Nothing more can be written; send the rest of stdout to /dev/null so that the
        # interpreter's own flush at exit does not complain either.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.WARNING
        if args.verbose == 0
        else logging.INFO
        if args.verbose == 1
        else logging.DEBUG
    )
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
