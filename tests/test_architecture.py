"""The direction of flow is a fact of the tree: schema files -> codegen -> generated -> runtime.

Each check runs in a fresh interpreter and inspects ``sys.modules``, so an
import added anywhere (eager or lazy, at module level) that breaks the
direction fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli import ROOT

#: what codegen may load of the toolkit: the package marker and its leaf modules
LEAF_VOCABULARY = {"toolkit", "toolkit.config", "toolkit.paths", "toolkit.routing", "toolkit.wire"}


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
    loaded = _modules_after("import toolkit.config, toolkit.paths, toolkit.routing, toolkit.wire")
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
