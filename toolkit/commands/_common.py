"""Helpers shared by subcommands: settings from flags over pyproject, error printing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.config import Config, ConfigError, load_config, replace_config
from toolkit.paths import relative_path

__all__ = ["add_location_flags", "config_from", "fail"]


def add_location_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schemas",
        type=Path,
        help="schema folder (default: [tool.toolkit] schemas, else ./schemas)",
    )
    parser.add_argument(
        "--out", type=Path, help="output folder (default: [tool.toolkit] output, else ./generated)"
    )
    parser.add_argument(
        "--package", help="import name of the output package (default: the output folder's name)"
    )


def config_from(args: argparse.Namespace) -> Config:
    try:
        config = load_config()
    except ConfigError as exc:
        fail(str(exc))
        raise SystemExit(2) from None
    schemas = getattr(args, "schemas", None)
    out = getattr(args, "out", None)
    package = getattr(args, "package", None)
    return replace_config(
        config,
        schemas=schemas if schemas is not None else config.schemas,
        output=out if out is not None else config.output,
        package=package or (out.name if out is not None else config.package),
    )


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def display(path: Path) -> str:
    return relative_path(path)
