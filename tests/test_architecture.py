"""The direction of flow is a fact of the tree: schema files -> codegen -> generated -> runtime.

Each check runs in a fresh interpreter and inspects ``sys.modules``, so an
import added anywhere (eager or lazy, at module level) that breaks the
direction fails here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ROOT

#: what codegen may load of the toolkit: the package marker and its leaf modules
LEAF_VOCABULARY = {
    "toolkit",
    "toolkit.config",
    "toolkit.durations",
    "toolkit.paths",
    "toolkit.priority",
    "toolkit.routing",
    "toolkit.wire",
}


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_codegen_loads_only_the_leaf_vocabulary_of_the_runtime() -> None:
    loaded = _modules_after(
        "import importlib, pkgutil, codegen\n"
        "for info in pkgutil.walk_packages(codegen.__path__, 'codegen.'):\n"
        "    importlib.import_module(info.name)\n"
    )
    runtime = {m for m in loaded if m == "toolkit" or m.startswith("toolkit.")}
    assert runtime <= LEAF_VOCABULARY, sorted(runtime - LEAF_VOCABULARY)
    assert not {"redis", "toolkit.bus", "toolkit.consumer"} & loaded


def test_the_leaf_vocabulary_imports_nothing_else_of_the_toolkit() -> None:
    loaded = _modules_after(
        "import toolkit.config, toolkit.durations, toolkit.paths, toolkit.priority, toolkit.routing, "
        "toolkit.wire"
    )
    assert {m for m in loaded if m.startswith("toolkit")} == LEAF_VOCABULARY


def test_import_toolkit_is_cheap() -> None:
    loaded = _modules_after("import toolkit")
    assert {m for m in loaded if m.startswith("toolkit")} == {"toolkit"}


def test_the_running_runtime_never_loads_the_generator() -> None:
    loaded = _modules_after(
        "import asyncio, uuid, toolkit\n"
        "for name in toolkit.__all__:\n"
        "    getattr(toolkit, name)\n"
        "import generated\n"
        "from generated.service_map import SERVICE_MAP\n"
        "from generated.ticket_service import CreateTicket, bind\n"
        "from generated.user_service import UserServicePublisher\n"
        "from toolkit.testing import InMemorySystem\n"
        "handled = []\n"
        "class Tickets:\n"
        "    def __getattr__(self, name):\n"
        "        return lambda message, meta: handled.append(message)\n"
        "async def main():\n"
        "    system = InMemorySystem(SERVICE_MAP)\n"
        "    await system.bind(bind(Tickets()))\n"
        "    users = UserServicePublisher(system.bus('user_service'))\n"
        "    await users.send_ticket_create(\n"
        "        CreateTicket(ticket_id=uuid.uuid4(), subject='s', requester_email='a@b.c')\n"
        "    )\n"
        "    await system.run_all()\n"
        "    assert handled, 'the command was not handled'\n"
        "asyncio.run(main())\n"
    )
    forbidden = {m for m in loaded if m.split(".")[0] in {"codegen", "jinja2", "libcst"}}
    assert not forbidden, sorted(forbidden)


def test_the_command_line_loads_neither_the_transports_nor_the_runtime_to_start() -> None:
    loaded = _modules_after("import toolkit.cli\ntoolkit.cli.build_parser()")
    clients = {"redis", "aio_pika", "aiormq", "psycopg"}
    assert not {*clients, "toolkit.channels.redis.transport", "toolkit.consumer"} & loaded


def test_a_process_loads_the_client_of_its_own_pipes_only() -> None:
    loaded = _modules_after(
        "from toolkit.pipe_settings import Bindings, bindings_from\n"
        "from toolkit.pipes import Pipes\n"
        "bindings = bindings_from(pipes={'mq': 'amqp://h/', 'pg': 'postgresql://h/db'},\n"
        "    channels={'a': 'mq', 'b': 'pg'}, environ={})\n"
        "pipes = Pipes(bindings)\n"
        "pipes.transport('c')  # the default pipe: Redis\n"
    )
    assert "redis" in loaded
    assert not {"aio_pika", "aiormq", "psycopg"} & loaded


def _forbidden(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m.split(".")[0] in {"codegen", "jinja2", "libcst"})


#: every public name of the runtime, the Redis package and its modules, the testing helpers
_IMPORT_THE_RUNTIME = (
    "import asyncio, importlib, pkgutil, uuid, toolkit, toolkit.channels.redis, toolkit.testing\n"
    "for name in toolkit.__all__:\n"
    "    getattr(toolkit, name)\n"
    "for name in toolkit.channels.redis.__all__:\n"
    "    getattr(toolkit.channels.redis, name)\n"
    "for info in pkgutil.iter_modules(toolkit.channels.redis.__path__, 'toolkit.channels.redis.'):\n"
    "    importlib.import_module(info.name)\n"
)


#: a Redis consumer (Runner) handles a command a generated publisher sent
_RUN_A_REDIS_CONSUMER = (
    "from generated.service_map import SERVICE_MAP\n"
    "from generated.ticket_service import CreateTicket, bind\n"
    "from generated.user_service import UserServicePublisher\n"
    "from toolkit import DistributedBus, Runner, RunOptions\n"
    "from toolkit.channels.redis import RedisTransport\n"
    "handled = []\n"
    "class Tickets:\n"
    "    def __getattr__(self, name):\n"
    "        return lambda message, meta: handled.append(message)\n"
    "async def main():\n"
    "    transport = RedisTransport(REDIS_URL, prefix='arch')\n"
    "    runner = Runner(transport, 'ticket_commands', bind(Tickets()), RunOptions(until_empty=True))\n"
    "    await runner.consumer.subscription()\n"
    "    users = UserServicePublisher(DistributedBus('user_service', SERVICE_MAP, transport))\n"
    "    await users.send_ticket_create(\n"
    "        CreateTicket(ticket_id=uuid.uuid4(), subject='s', requester_email='a@b.c')\n"
    "    )\n"
    "    await runner.run()\n"
    "    await transport.close()\n"
    "    assert handled, 'the command was not handled'\n"
    "asyncio.run(main())\n"
)


def test_a_redis_consumer_never_loads_the_generator(tmp_path: Path) -> None:
    from tests.redis.conftest import require_redis_server
    from tests.redis.server import RedisServer

    require_redis_server()
    server = RedisServer(tmp_path / "redis").start()
    try:
        script = _RUN_A_REDIS_CONSUMER.replace("REDIS_URL", repr(server.url))
        loaded = _modules_after(_IMPORT_THE_RUNTIME + script)
    finally:
        server.stop()
    assert not _forbidden(loaded)
    assert {"toolkit.runner", "toolkit.channels.redis.subscription"} <= loaded


#: (old import path, its names that moved: None for all of its ``__all__``, where they live now)
OLD_PATHS = [
    (
        "toolkit.channels.redis_streams",
        None,
        ["toolkit.channels.redis", "toolkit.channels.redis.entries"],
    ),
    ("toolkit.channels.redis_keys", None, ["toolkit.channels.redis.keys"]),
    ("toolkit.redis_url", None, ["toolkit.channels.redis.connection"]),
    ("toolkit.testing_drift", None, ["toolkit.testing.drift"]),
    ("toolkit.testing", None, ["toolkit.testing.system", "toolkit.testing.drift"]),
    (
        "toolkit",
        ["ChannelOptions", "RedisTransport", "SyncRedisTransport"],
        ["toolkit.channels.redis"],
    ),
    ("toolkit", ["Runner", "RunOptions"], ["toolkit.runner"]),
    ("toolkit.consumer", ["describe_failure", "failure_details"], ["toolkit.settlement"]),
]


@pytest.mark.parametrize(("old", "names", "homes"), OLD_PATHS)
def test_old_import_paths_give_the_same_objects(
    old: str, names: list[str] | None, homes: list[str]
) -> None:
    module = importlib.import_module(old)
    places = [importlib.import_module(home) for home in homes]
    for name in names if names is not None else module.__all__:
        assert name in module.__all__, f"{old}.{name} is not exported"
        found = [getattr(place, name) for place in places if name in place.__all__]
        assert found, f"{old}.{name} is in none of {homes}"
        assert getattr(module, name) is found[0], f"{old}.{name} is another object"


def test_toolkit_imports_and_generates_without_posix_only_modules(tmp_path: Path) -> None:
    # Windows has no `resource` module and no os.register_at_fork; `toolkit generate`
    # and the runtime must still import there.
    loaded = _modules_after(
        "import os, sys\n"
        "sys.modules['resource'] = None\n"
        "del os.register_at_fork\n"
        "import toolkit\n"
        "for name in toolkit.__all__:\n"
        "    getattr(toolkit, name)\n"
        "from toolkit.rss import rss_bytes\n"
        "rss_bytes()\n"
        "from toolkit.cli import main\n"
        f"assert main(['generate', '--out', {str(tmp_path / 'out')!r}]) == 0\n"
    )
    assert "toolkit.runner" in loaded
