"""``toolkit docs [--check]``: an AsyncAPI 3.0 document and a Mermaid service map of the system."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import (
    config_from,
    display,
    load_schemas,
    report_check,
    report_written,
)

if TYPE_CHECKING:
    from codegen.model import SystemModel

__all__ = ["DEFAULT_OUT", "docs_files", "register", "run"]

#: Output folder, relative to the project root (the folder of pyproject.toml).
DEFAULT_OUT = Path("docs/system")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "docs",
        help="write an AsyncAPI 3.0 document and a Mermaid diagram of the service map",
        description="Write a picture of the whole system from the schema files: asyncapi.json "
        "(AsyncAPI 3.0: channels, send/receive operations, messages with JSON Schemas and "
        "headers), service-map.mmd (Mermaid) and service-map.md (the diagram and tables).",
    )
    parser.add_argument(
        "--schemas",
        type=Path,
        help="schema folder (default: [tool.toolkit] schemas, else ./schemas)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default: {DEFAULT_OUT} under the project root)",
    )
    parser.add_argument(
        "--package",
        help="import name of the generated package (default: [tool.toolkit] package)",
    )
    parser.add_argument("--title", default="System map", help="info.title of the AsyncAPI document")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when the files in the output folder are stale or missing",
    )
    parser.set_defaults(func=run)


def docs_files(system: SystemModel, *, title: str = "System map") -> dict[str, str]:
    """``{file name: text}`` for the output folder; pure."""
    from codegen.system.asyncapi import asyncapi_json
    from codegen.system.mermaid import service_map_markdown, service_map_mermaid

    diagram = service_map_mermaid(system)
    return {
        "asyncapi.json": asyncapi_json(system, title=title),
        "service-map.md": service_map_markdown(system, diagram),
        "service-map.mmd": diagram,
    }


def run(args: argparse.Namespace) -> int:
    from codegen.output import apply_drift, compare_files

    config = config_from(argparse.Namespace(schemas=args.schemas, package=args.package))
    out: Path = args.out if args.out is not None else config.root / DEFAULT_OUT
    system = load_schemas(config)
    if isinstance(system, int):
        return system
    files = docs_files(system, title=args.title)
    drift = compare_files(files, out, show=display)
    if args.check:
        return report_check(drift, out, config.schemas, len(files), "docs", leftovers=False)
    apply_drift(files, out, drift)
    return report_written(drift, out, len(files))
