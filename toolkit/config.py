"""Project settings from ``[tool.toolkit]`` in the nearest pyproject.toml."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import msgspec.structs

__all__ = [
    "Config",
    "ConfigError",
    "import_generated",
    "load_config",
    "put_generated_on_path",
    "replace_config",
]


class _Table(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    schemas: str = "schemas"
    output: str = "generated"
    package: str | None = None
    #: modules holding the users' handler implementations, for ``toolkit check``
    implementations: dict[str, str] = msgspec.field(default_factory=dict)
    #: the contract snapshot ``toolkit check`` compares against by default
    snapshot: str | None = None
    #: breaking changes accepted on purpose by ``toolkit check``: "KEY" or "KEY:RULE"
    accept_breaking: list[str] = msgspec.field(default_factory=list)
    redis_url: str | None = None
    #: pipe name -> URL (``[tool.toolkit.pipes]``)
    pipes: dict[str, str] = msgspec.field(default_factory=dict)
    #: channel -> pipe name or URL (``[tool.toolkit.channels]``)
    channels: dict[str, str] = msgspec.field(default_factory=dict)
    #: the pipe of every channel not bound in ``channels``
    default_pipe: str | None = None


class Config(msgspec.Struct, frozen=True, kw_only=True):
    root: Path
    schemas: Path
    output: Path
    package: str
    implementations: dict[str, str]
    snapshot: Path | None
    redis_url: str | None
    pyproject: Path | None
    accept_breaking: tuple[str, ...] = ()
    #: pipe name -> URL; see :mod:`toolkit.pipe_settings` for how they combine with the environment
    pipes: dict[str, str] = msgspec.field(default_factory=dict)
    #: channel -> pipe name or URL
    channel_pipes: dict[str, str] = msgspec.field(default_factory=dict)
    default_pipe: str | None = None


def replace_config(config: Config, **changes: Any) -> Config:
    """``config`` with some settings changed; every other setting is kept."""
    return msgspec.structs.replace(config, **changes)


class ConfigError(ValueError):
    pass


def _find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path | None = None) -> Config:
    start = (start or Path.cwd()).resolve()
    pyproject = _find_pyproject(start)
    table: dict[str, Any] = {}
    root = start
    if pyproject is not None:
        root = pyproject.parent
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject}: {exc}") from None
        table = data.get("tool", {}).get("toolkit", {})
    try:
        parsed = msgspec.convert(table, _Table)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{pyproject}: [tool.toolkit]: {exc}") from None
    output = root / parsed.output
    return Config(
        root=root,
        schemas=root / parsed.schemas,
        output=output,
        package=parsed.package or output.name,
        implementations=parsed.implementations,
        snapshot=root / parsed.snapshot if parsed.snapshot else None,
        redis_url=parsed.redis_url,
        pyproject=pyproject,
        accept_breaking=tuple(parsed.accept_breaking),
        pipes=parsed.pipes,
        channel_pipes=parsed.channels,
        default_pipe=parsed.default_pipe,
    )


def import_generated(output: Path, package: str) -> ModuleType:
    """Import the generated package that lives in folder ``output``.

    Its parent folder goes first on ``sys.path`` when it is not there: the
    console scripts and plain ``pytest`` do not put the project folder on it.
    """
    put_generated_on_path(output)
    return importlib.import_module(package)


def put_generated_on_path(output: Path) -> None:
    """Make the package in folder ``output`` importable (its parent goes first on sys.path)."""
    parent = str(output.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
