"""pytest fixtures for services built on toolkit (registered through the pytest11 entry point).

* ``memory_transport``: a fresh InMemoryTransport.
* ``make_system``: ``make_system(service_map)`` -> InMemorySystem, closed after the test.
* ``toolkit_system``: an InMemorySystem of the project's generated SERVICE_MAP
  (``[tool.toolkit]`` output/package in pyproject.toml).
* ``toolkit_drift``: call it to assert generated code matches the schema files.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from toolkit.channels.memory import InMemoryTransport
from toolkit.service_map import ServiceMap
from toolkit.testing import InMemorySystem, assert_no_drift


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
    from toolkit.config import load_config

    config = load_config()
    parent = str(config.output.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    generated = importlib.import_module(config.package)
    return make_system(generated.SERVICE_MAP)


@pytest.fixture
def toolkit_drift() -> Iterator[Callable[[], None]]:
    yield assert_no_drift
