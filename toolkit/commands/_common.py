"""Helpers shared by subcommands: settings from flags over pyproject, error and drift printing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.config import Config, ConfigError, load_config, replace_config
from toolkit.paths import relative_path

if TYPE_CHECKING:
    from codegen.errors import Diagnostic
    from codegen.model import SystemModel
    from codegen.output import Drift

__all__ = [
    "add_location_flags",
    "add_strict_flag",
    "config_from",
    "fail",
    "load_schemas",
    "report_check",
    "report_warnings",
    "report_written",
]


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


def add_strict_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat schema warnings (e.g. a subscription that receives nothing) as errors: exit 2",
    )


def report_warnings(warnings: Sequence[Diagnostic], strict: bool) -> bool:
    """Print schema warnings (stderr); True when they fail the run, under ``--strict``."""
    if not warnings:
        return False
    from codegen.errors import render_diagnostics

    text = render_diagnostics(warnings)
    print(text + (" (--strict: they fail the run)" if strict else ""), file=sys.stderr)
    return strict


def load_schemas(config: Config, strict: bool | None = None) -> SystemModel | int:
    """The validated model of the schemas, or the exit status after printing why not.

    Errors: every one printed, status 2. Warnings: printed when ``strict`` is
    given (the commands with a ``--strict`` flag); under ``--strict`` status 2.
    """
    from codegen.build import load_system
    from codegen.errors import SchemaErrors

    try:
        system = load_system(config.schemas, config.package)
    except SchemaErrors as exc:
        return fail(exc.render())
    if strict is not None and report_warnings(system.warnings, strict):
        return 2
    return system


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


def report_check(
    drift: Drift, out: Path, source: Path, count: int, command: str, *, leftovers: bool = True
) -> int:
    """Print the outcome of ``--check`` for an output folder; 0 when up to date, else 1."""
    if drift.clean:
        print(f"{display(out)} is up to date with {display(source)} ({count} files)")
        return 0
    sys.stdout.write(drift.diff)
    found = [("stale", drift.changed), ("missing", drift.missing)]
    if leftovers:
        found.append(("extra", drift.extra))
    for label, paths in found:
        for path in paths:
            print(f"{label}: {display(out / path)}", file=sys.stderr)
    counts = ", ".join(f"{len(paths)} {label}" for label, paths in found)
    print(
        f"{display(out)} has drifted from {display(source)}: {counts}; run `toolkit {command}`",
        file=sys.stderr,
    )
    return 1


def report_written(drift: Drift, out: Path, count: int) -> int:
    """Print what writing an output folder did."""
    if drift.clean:
        print(f"no changes: {count} files in {display(out)} are up to date")
        return 0
    for label, paths in (
        ("updated", drift.changed),
        ("created", drift.missing),
        ("removed", drift.extra),
    ):
        for path in paths:
            print(f"{label}: {display(out / path)}")
    return 0
