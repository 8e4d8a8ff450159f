"""``toolkit check``: breaking changes against a contract snapshot, and handler drift.

``--against REF`` compares the current schemas with a snapshot: REF is a
``contracts.lock.json`` file (or a folder holding one) or a git revision, in
which case ``<output>/contracts.lock.json`` is read at that revision with
``git show``. Without ``--against``, ``[tool.toolkit] snapshot`` is used when
set. When ``[tool.toolkit] implementations`` is set, the users' handler
classes are checked against the schemas too.

Exit status: 0 nothing breaking (or every breaking change accepted), 1 a
breaking change or an implementation problem, 2 bad input (schema warnings
too, under ``--strict``). The comparison
itself lives in :mod:`codegen.contracts.breaking`; this module only reads and prints.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from toolkit.commands._common import (
    add_location_flags,
    add_strict_flag,
    config_from,
    display,
    fail,
    load_schemas,
)
from toolkit.config import Config, ConfigError, load_config

__all__ = ["register", "run"]

_SNAPSHOT_FILE = "contracts.lock.json"


class RefError(ValueError):
    """REF names neither a snapshot file nor a git revision holding one."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "check",
        help="find breaking contract changes against a snapshot; check handler implementations",
        description=(
            "Compare the current schemas with a contract snapshot and list each change per "
            "routing key as breaking or safe (docs/compatibility.md); check the handler "
            "classes configured in [tool.toolkit] implementations. Exit 1 on a breaking "
            "change or an implementation problem, 2 on bad input."
        ),
    )
    add_location_flags(parser)
    parser.add_argument(
        "--against",
        metavar="REF",
        help="a contracts.lock.json file (or its folder), or a git revision: then "
        "<output>/contracts.lock.json at that revision (default: [tool.toolkit] snapshot)",
    )
    parser.add_argument(
        "--allow-breaking",
        metavar="KEY[:RULE]",
        action="append",
        default=[],
        help="accept the breaking changes of a routing key on purpose (all of them, or only "
        "RULE, e.g. ticket.create:required-field-added); repeatable. The same list can live "
        "in [tool.toolkit] accept_breaking",
    )
    add_strict_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    config = config_from(args)
    try:
        configured_accepts = load_config(config.root).accept_breaking
    except ConfigError as exc:
        return fail(str(exc))
    ref: str | None = args.against
    if ref is None and config.snapshot is not None:
        ref = str(config.snapshot)
    if ref is None and not config.implementations:
        return fail(
            "toolkit check: error: nothing to check\n"
            "    fix: give --against REF (a contracts.lock.json or a git revision), or set "
            "snapshot or implementations under [tool.toolkit] in pyproject.toml"
        )
    system = load_schemas(config, args.strict)
    if isinstance(system, int):
        return system
    status = 0
    if ref is not None:
        status = _breaking(ref, config, system, [*configured_accepts, *args.allow_breaking])
        if status == 2:
            return 2
    if config.implementations:
        status = max(status, _implementations(config, system))
    return status


# -- breaking changes ---------------------------------------------------------------


def _breaking(ref: str, config: Config, system: Any, accepts: list[str]) -> int:
    from codegen.contracts.breaking import CHANGE_RULES, accept, compare, unused_accepts
    from codegen.contracts.snapshot import SnapshotError, build_snapshot, load_snapshot

    for entry in accepts:
        key, _, rule = entry.partition(":")
        if not key or (rule and rule not in CHANGE_RULES):
            return fail(
                f"toolkit check: error: cannot accept {entry!r}: write KEY or KEY:RULE\n"
                f"    fix: RULE is one of {', '.join(sorted(CHANGE_RULES))}"
            )
    try:
        data, label = read_ref(ref, config)
        old = load_snapshot(data, label)
    except (RefError, SnapshotError) as exc:
        return fail(str(exc))
    new = build_snapshot(system)
    changes = accept(compare(old, new), accepts)
    print(f"contracts in {display(config.schemas)} against {label}:")
    if not changes:
        print(f"  no changes ({len(new.messages)} routing keys)")
    current = None
    for change in changes:
        if change.key != current:
            current = change.key
            message = new.messages.get(change.key) or old.messages[change.key]
            print(f"{change.key} ({message.kind}, owner {message.owner})")
        print(change.render())
    breaking = [c for c in changes if c.breaking and not c.accepted]
    accepted = [c for c in changes if c.accepted]
    safe = len(changes) - len(breaking) - len(accepted)
    print(
        f"{_count(len(breaking), 'breaking change')}, {len(accepted)} accepted, "
        f"{_count(safe, 'safe change')}"
    )
    for entry in unused_accepts(changes, accepts):
        print(
            f"note: accepted {entry!r} matches no breaking change; remove it from "
            "--allow-breaking or [tool.toolkit] accept_breaking",
            file=sys.stderr,
        )
    if breaking:
        keys = sorted({c.key for c in breaking})
        print(
            f"error: {_count(len(breaking), 'breaking change')} against {label}: services built "
            "from the old schemas and from the new ones would not understand each other\n"
            "    fix: keep the old contract (add fields with defaults, widen what readers "
            "accept; docs/compatibility.md), or accept it on purpose: "
            + " ".join(f"--allow-breaking {k}" for k in keys)
            + ", or accept_breaking = ["
            + ", ".join(f'"{k}"' for k in keys)
            + "] under [tool.toolkit]",
            file=sys.stderr,
        )
        return 1
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def read_ref(ref: str, config: Config) -> tuple[bytes, str]:
    """The snapshot bytes REF names, and how to name them in messages."""
    path = Path(ref)
    if path.is_dir():
        path = path / _SNAPSHOT_FILE
    if path.is_file():
        try:
            return path.read_bytes(), display(path)
        except OSError as exc:
            raise RefError(f"{display(path)}: error: cannot read: {exc}") from None
    target = (config.output / _SNAPSHOT_FILE).resolve()
    not_found = f"toolkit check: error: {ref!r} is neither a snapshot file nor a git revision"
    fix = (
        "\n    fix: give a contracts.lock.json path, or a revision such as HEAD, main or "
        "origin/main whose tree holds the snapshot (run `toolkit generate` and commit it)"
    )
    if ref.startswith("-"):
        raise RefError(not_found + fix)
    top = _git(["rev-parse", "--show-toplevel"], config.root)
    if top is None:
        raise RefError(not_found + f" ({display(config.root)} is not in a git repository)" + fix)
    root = Path(top.decode().strip()).resolve()
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root) is None:
        raise RefError(not_found + fix)
    try:
        relative = target.relative_to(root).as_posix()
    except ValueError:
        raise RefError(
            f"toolkit check: error: the output folder {display(config.output)} is outside "
            f"the git repository at {root}" + fix
        ) from None
    data = _git(["show", f"{ref}:{relative}"], root)
    if data is None:
        raise RefError(
            f"toolkit check: error: revision {ref!r} has no {relative}"
            "\n    fix: compare with a revision made after the snapshot was first committed, "
            "or with a snapshot file"
        )
    return data, f"{ref}:{relative}"


def _git(arguments: list[str], cwd: Path) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", *arguments], cwd=cwd, capture_output=True, check=False, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


# -- handler implementations ----------------------------------------------------------


def _implementations(config: Config, system: Any) -> int:
    try:
        from codegen.usercode.impl_check import ImplConfigError, check_implementations
    except ImportError:  # pragma: no cover - the module ships with toolkit
        print("note: implementation checks are not available", file=sys.stderr)
        return 0
    try:
        problems = check_implementations(config, system)
    except ImplConfigError as exc:
        return fail(str(exc))
    for problem in problems:
        print(problem.render())
    if problems:
        print(
            f"error: {_count(len(problems), 'implementation problem')}\n"
            "    fix: `toolkit scaffold SERVICE --into FILE` adds missing handlers; "
            "remove or rename orphans",
            file=sys.stderr,
        )
        return 1
    return 0
