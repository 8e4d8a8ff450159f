"""``toolkit docs [--check]``: an AsyncAPI 3.0 document and a Mermaid service map of the system."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import config_from, display, fail

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
    from codegen.asyncapi import asyncapi_json
    from codegen.mermaid import service_map_markdown, service_map_mermaid

    diagram = service_map_mermaid(system)
    return {
        "asyncapi.json": asyncapi_json(system, title=title),
        "service-map.md": service_map_markdown(system, diagram),
        "service-map.mmd": diagram,
    }


def _stale(files: dict[str, str], out: Path) -> tuple[list[str], list[str], str]:
    changed: list[str] = []
    missing: list[str] = []
    diff: list[str] = []
    for name, text in sorted(files.items()):
        target = out / name
        old = target.read_text(encoding="utf-8") if target.is_file() else None
        if old == text:
            continue
        (missing if old is None else changed).append(name)
        diff.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{display(target)} (on disk)" if old is not None else "/dev/null",
                tofile=f"{display(target)} (generated)",
            )
        )
    return changed, missing, "".join(diff)


def run(args: argparse.Namespace) -> int:
    from codegen.build import load_system
    from codegen.errors import SchemaErrors

    config = config_from(argparse.Namespace(schemas=args.schemas, package=args.package))
    out: Path = args.out if args.out is not None else config.root / DEFAULT_OUT
    try:
        system = load_system(config.schemas, config.package)
    except SchemaErrors as exc:
        return fail(exc.render())
    files = docs_files(system, title=args.title)
    changed, missing, diff = _stale(files, out)
    if args.check:
        if not (changed or missing):
            print(
                f"{display(out)} is up to date with {display(config.schemas)} ({len(files)} files)"
            )
            return 0
        sys.stdout.write(diff)
        for label, names in (("stale", changed), ("missing", missing)):
            for name in names:
                print(f"{label}: {display(out / name)}", file=sys.stderr)
        print(
            f"{display(out)} has drifted from {display(config.schemas)}: {len(changed)} stale, "
            f"{len(missing)} missing; run `toolkit docs`",
            file=sys.stderr,
        )
        return 1
    if not (changed or missing):
        print(f"no changes: {len(files)} files in {display(out)} are up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for label, names in (("updated", changed), ("created", missing)):
        for name in names:
            (out / name).write_text(files[name], encoding="utf-8")
            print(f"{label}: {display(out / name)}")
    return 0
