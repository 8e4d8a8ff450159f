"""pytest fixtures for services built on toolkit (registered through the pytest11 entry point).

* ``memory_transport``: a fresh InMemoryTransport.
* ``make_system``: ``make_system(service_map)`` -> InMemorySystem, closed after the test.
* ``toolkit_system``: an InMemorySystem of the project's generated SERVICE_MAP
  (``[tool.toolkit]`` output/package in pyproject.toml).
* ``toolkit_drift``: call it to assert generated code matches the schema files.

It also makes the project's generated package importable from tests: plain
``pytest`` (unlike ``python -m pytest``) does not put the project folder on
``sys.path``, so ``import generated`` would fail without a ``pythonpath``
setting. The folder holding ``[tool.toolkit] output`` is added when the
package is not importable already.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from toolkit.channels.memory import InMemoryTransport
from toolkit.config import ConfigError, import_generated, load_config, put_generated_on_path
from toolkit.service_map import ServiceMap
from toolkit.testing import InMemorySystem, assert_no_drift


def pytest_configure(config: pytest.Config) -> None:
    _make_generated_importable(Path(config.rootpath))


def _make_generated_importable(root: Path) -> None:
    try:
        settings = load_config(root)
    except ConfigError:
        return  # reported by the commands that need the settings, not by every test run
    if not (settings.output / "__init__.py").is_file():
        return
    if importlib.util.find_spec(settings.package) is None:
        put_generated_on_path(settings.output)


@pytest.fixture
def memory_transport() -> InMemoryTransport:
    return InMemoryTransport()


@pytest.fixture
async def make_system() -> AsyncIterator[Callable[[ServiceMap], InMemorySystem]]:
    made: list[InMemorySystem] = []

    def make(service_map: ServiceMap) -> InMemorySystem:
        system = InMemorySystem(service_map)
        made.append(system)
        return system

    yield make
    for system in made:
        await system.close()


@pytest.fixture
async def toolkit_system(make_system: Callable[[ServiceMap], InMemorySystem]) -> InMemorySystem:
    config = load_config()
    generated = import_generated(config.output, config.package)
    return make_system(generated.SERVICE_MAP)


@pytest.fixture
def toolkit_drift() -> Iterator[Callable[[], None]]:
    yield assert_no_drift
