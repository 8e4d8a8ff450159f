"""``toolkit scaffold SERVICE --into FILE``: write or complete a handler implementation module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from toolkit.commands._common import add_location_flags, config_from, display, fail
from toolkit.paths import relative_path


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "scaffold",
        help="write or complete a module implementing a service's handler Protocol",
        description="Create FILE with a class implementing SERVICE's generated handler Protocol, "
        "one method per routing key it consumes. When FILE exists, add only the missing "
        "methods and imports; existing code, comments and formatting stay as they are, and "
        "methods for keys no longer consumed are reported, never deleted.",
    )
    parser.add_argument("service", metavar="SERVICE", help="service name, e.g. ticket_service")
    parser.add_argument(
        "--into",
        type=Path,
        help="the module to write or complete (default: the file [tool.toolkit] "
        "implementations names for SERVICE)",
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        help="handler class name (default: the configured one, else e.g. TicketService "
        "for ticket_service, OrdersService for orders)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when FILE lacks methods or imports",
    )
    add_location_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codegen.errors import SchemaErrors
    from codegen.output import diff_text
    from codegen.usercode.impl_check import ImplConfigError, parse_spec
    from codegen.usercode.scaffold import ScaffoldError, scaffold

    config = config_from(args)
    service: str = args.service
    target: Path | None = args.into
    class_name: str | None = args.class_name
    configured = config.implementations.get(service)
    if configured is not None:
        try:
            spec = parse_spec(service, configured, config.root)
        except ImplConfigError:
            spec = None  # `toolkit check` reports a bad setting; --into still works
        if spec is not None and (target is None or _same(target, spec.path)):
            target = spec.path
            class_name = class_name or spec.class_name
    if target is None:
        return fail(
            f"toolkit scaffold: no file for {service}: pass --into path/to/module.py, or set\n"
            f'    [tool.toolkit] implementations = {{ {service} = "app/handlers.py:ClassName" }}'
        )
    label = display(target)
    if target.is_dir():
        return fail(f"{label}: error: is a folder; --into takes a .py file")
    existing: str | None = None
    if target.exists():
        try:
            # newline="": keep the file's own line endings (CRLF stays CRLF).
            with target.open(encoding="utf-8", newline="") as file:
                existing = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            return fail(f"{label}: error: cannot read: {exc}")
    try:
        from codegen.build import load_system

        system = load_system(config.schemas, config.package)
        result = scaffold(system, service, existing, class_name=class_name, label=label)
    except SchemaErrors as exc:
        return fail(exc.render())
    except ScaffoldError as exc:
        return fail(f"toolkit scaffold: {exc}" if not str(exc).startswith(label) else str(exc))

    for name, line in result.orphans:
        print(
            f"{label}:{line}: note: {result.class_name}.{name} handles no routing key "
            f"{service} consumes; scaffold never deletes code, remove it by hand",
            file=sys.stderr,
        )
    model = next(s for s in system.services if s.name == service)
    if not result.changed:
        count = len(model.handlers)
        print(f"{label} is up to date: {result.class_name} has all {count} handlers of {service}")
        return 0
    if args.check:
        sys.stdout.write(diff_text(result.original, result.text, label, made_by="scaffolded"))
        print(
            f"{label} lacks handlers of {service}; run `toolkit scaffold {service}`",
            file=sys.stderr,
        )
        return 1
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as file:
            file.write(result.text)
    except OSError as exc:
        return fail(f"{label}: error: cannot write: {exc}")
    if result.original is None:
        count = len(model.handlers)
        print(
            f"created {label}: class {result.class_name} with {count} handler"
            f"{'s' if count != 1 else ''} of {service}"
        )
        for h in model.handlers:
            print(f"  {h.method_name}  ({h.kind} {h.routing_key})")
        if configured is None:
            print(
                f"to check it with `toolkit check`, add to pyproject.toml:\n"
                f"  [tool.toolkit]\n"
                f'  implementations = {{ {service} = "{_setting_path(target, config.root)}:'
                f'{result.class_name}" }}'
            )
        return 0
    if result.created_class:
        print(f"{label}: added class {result.class_name}")
    for added in result.added_methods:
        print(f"{label}:{added.line}: added {result.class_name}.{added.name} ({added.routing_key})")
    for statement in result.added_imports:
        print(f"{label}: added import: {statement}")
    return 0


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _setting_path(target: Path, root: Path) -> str:
    return relative_path(target, root)
