"""Drift checks for your own tests: generated code and handler classes against the schemas.

``assert_no_drift``: the generated code against the schema files (as
``toolkit generate --check``). ``assert_handlers_match`` and
``implementation_problems``: the handler implementations against the schemas,
the same checks as ``toolkit check`` (see ``codegen.usercode.impl_check``): missing
handlers, orphan handlers and signature mismatches, each with file and line.
The implementation modules are read with libcst, never imported. codegen,
libcst and jinja2 are imported only when a function here is called, so
importing this module costs nothing at runtime.

Typical use, in a test module of the project::

    from toolkit.testing import assert_handlers_match

    def test_handlers_match_the_schemas() -> None:
        assert_handlers_match()                      # every configured service
        assert_handlers_match("ticket_service")      # just one
        assert_handlers_match("ticket_service", "app/ticket_handlers.py:TicketHandlers")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.config import Config, load_config, replace_config

if TYPE_CHECKING:
    from codegen.usercode.impl_check import ImplProblem

__all__ = ["assert_handlers_match", "assert_no_drift", "implementation_problems"]

PathOrConfig = Config | str | os.PathLike[str] | None


def _resolve(service: str | None, path_or_config: PathOrConfig) -> Config:
    """Settings to check with: the given Config, a project, or one implementation file."""
    if isinstance(path_or_config, Config):
        config = path_or_config
    elif path_or_config is None:
        config = load_config()
    else:
        text = os.fspath(path_or_config)
        file_part, sep, class_part = text.rpartition(":")
        if not sep or not file_part.endswith(".py"):
            file_part, class_part = text, ""
        if not file_part.endswith(".py"):
            location = Path(text)
            return load_config(location.parent if location.name == "pyproject.toml" else location)
        if service is None:
            raise ValueError(
                f"implementation {text!r} given without the service it implements; "
                "pass the service name as the first argument"
            )
        module = Path(file_part).resolve()
        config = load_config(module.parent)
        implementation = str(module) + (f":{class_part}" if class_part else "")
        return replace_config(config, implementations={service: implementation})
    return config


def implementation_problems(
    service: str | None = None, path_or_config: PathOrConfig = None
) -> list[ImplProblem]:
    """Drift between the schemas and the handler implementations, sorted by file and line.

    ``service``: check only this service (None: every configured one).
    ``path_or_config``: a :class:`~toolkit.config.Config`; a project folder
    or its pyproject.toml (its ``[tool.toolkit]`` settings are used); or one
    implementation, ``"path/to/module.py:ClassName"`` (needs ``service``;
    schemas from the pyproject.toml above that file). None: the settings of
    the current directory's project.

    Raises ``codegen.usercode.impl_check.ImplConfigError`` for a bad setting, a module
    that cannot be parsed or a class that is not there; ``LookupError`` when
    ``service`` has no configured implementation.
    """
    from codegen.usercode.impl_check import check_implementations

    config = _resolve(service, path_or_config)
    if service is not None:
        if service not in config.implementations:
            where = config.pyproject or config.root
            raise LookupError(
                f"no implementation configured for {service!r} in {where}; set "
                f'[tool.toolkit] implementations = {{ {service} = "app/handlers.py:ClassName" }}'
            )
        config = replace_config(config, implementations={service: config.implementations[service]})
    return check_implementations(config)


def assert_handlers_match(service: str | None = None, path_or_config: PathOrConfig = None) -> None:
    """Fail with every problem listed when an implementation has drifted from the schemas.

    Arguments as for :func:`implementation_problems`.
    """
    problems = implementation_problems(service, path_or_config)
    if problems:
        count = len(problems)
        lines = [p.render() for p in problems]
        lines.append(
            f"{count} handler problem{'s' if count != 1 else ''}; "
            "`toolkit scaffold SERVICE` adds missing handlers"
        )
        raise AssertionError("\n".join(lines))


def assert_no_drift(
    schemas: Path | str | None = None,
    output: Path | str | None = None,
    package: str | None = None,
) -> None:
    """Fail (AssertionError with a unified diff) when ``output`` does not match ``schemas``.

    Defaults come from ``[tool.toolkit]`` in the nearest pyproject.toml. Bad
    schema files fail too, with every error listed.
    """
    from codegen.errors import SchemaErrors
    from codegen.generate import check_files, generate_files

    config = load_config()
    schemas_dir = Path(schemas) if schemas is not None else config.schemas
    out_dir = Path(output) if output is not None else config.output
    try:
        files = generate_files(
            schemas_dir, package or (out_dir.name if output is not None else config.package)
        )
    except SchemaErrors as exc:
        raise AssertionError(f"schema files are invalid:\n{exc.render()}") from None
    drift = check_files(files, out_dir)
    if not drift.clean:
        lines = [f"{out_dir} has drifted from {schemas_dir}; run `toolkit generate`"]
        lines += [f"  stale: {p}" for p in drift.changed]
        lines += [f"  missing: {p}" for p in drift.missing]
        lines += [f"  extra: {p}" for p in drift.extra]
        raise AssertionError("\n".join(lines) + "\n" + drift.diff)
