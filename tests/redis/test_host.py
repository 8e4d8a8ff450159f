"""``toolkit run SERVICE``: whole services as processes on a real Redis.

Each process is ``python -m toolkit`` with this checkout first on
``PYTHONPATH`` (the project folders are temporary copies, outside it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis.server import RedisServer
from toolkit.channels.redis import RedisTransport
from toolkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


class Processes:
    """Child processes started by a test, each with its stdout and stderr in files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], cwd: Path, **env: str) -> subprocess.Popen[bytes]:
        with (
            (self.folder / f"{name}.out").open("wb") as out,
            (self.folder / f"{name}.err").open("wb") as err,
        ):
            process = subprocess.Popen(
                [sys.executable, "-m", "toolkit", *args],
                cwd=cwd,
                env={**ENV, **env},
                stdout=out,
                stderr=err,
            )
        self.running[name] = process
        return process

    def out(self, name: str) -> str:
        return (self.folder / f"{name}.out").read_text()

    def err(self, name: str) -> str:
        return (self.folder / f"{name}.err").read_text()

    def stop_all(self) -> None:
        """SIGTERM each, and each must exit 0 (a graceful stop)."""
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for name, process in self.running.items():
            assert process.wait(15) == 0, self.err(name)

    def kill_left(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    yield running
    running.kill_left()


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)
    return result


def python(*args: str, cwd: Path, **env: str) -> str:
    """Run ``python ARGS`` in ``cwd`` (with ``env`` added) to its successful end; its stdout."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def project(tmp_path: Path, source: Path) -> Path:
    """A copy of ``source`` (schemas and app) with its code generated, as a user's project."""
    folder = tmp_path / "project"
    shutil.copytree(source, folder)
    python("-m", "toolkit", "generate", cwd=folder)
    return folder


def pending(url: str, prefix: str, channel: str, group: str) -> int:
    """Unacknowledged messages of ``group`` on ``channel`` (one server or a cluster URL)."""

    async def count() -> int:
        transport = RedisTransport(url, prefix=prefix)
        try:
            return await transport.pending_count(channel, group)
        finally:
            await transport.close()

    return asyncio.run(count())


def test_the_quickstart_runs_as_one_process_per_service_on_redis(
    tmp_path: Path, processes: Processes
) -> None:
    # The README's commands as they are: the default prefix, the URL from REDIS_URL,
    # so a server of its own (no other test's keys under the default prefix).
    server = RedisServer(tmp_path / "redis").start()
    try:
        shop = project(tmp_path, ROOT / "docs" / "examples" / "quickstart")
        env = {"REDIS_URL": server.url}
        processes.start("orders", ["run", "order_service", "--app", "app:orders"], shop, **env)
        processes.start(
            "shipping", ["run", "shipping_service", "--app", "app:shipping"], shop, **env
        )
        product = f"teapot-{uuid.uuid4().hex[:8]}"
        done = subprocess.run(
            [sys.executable, "send.py", product],
            cwd=shop,
            env={**ENV, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        shipped = f"shipping_service: shipping {product} for order "
        wait_for(lambda: shipped in processes.out("shipping"), what="the event to be handled")
        wait_for(
            lambda: (
                pending(server.url, "tk", "order_commands", "order_service") == 0
                and pending(server.url, "tk", "shipping_events", "shipping_service") == 0
            ),
            what="acknowledgements",
        )
        time.sleep(0.5)  # anything handled twice would show by now
        assert processes.out("orders").splitlines() == [f"order_service: placing 1 x {product}"]
        [line] = processes.out("shipping").splitlines()
        assert line.startswith(shipped)
        processes.stop_all()
        summary = processes.err("orders").splitlines()[0]
        assert summary.startswith(f"order_service: consuming order_commands on {server.url} ")
        assert "(prefix tk), group order_service, consumer " in summary
    finally:
        processes.kill_left()  # before the server goes (a no-op after stop_all)
        server.stop()


def test_a_command_causes_events_that_two_other_services_handle_once(
    redis_url: str, prefix: str, tmp_path: Path, processes: Processes
) -> None:
    shop = project(tmp_path, ROOT / "tests" / "fixtures_host")
    log = tmp_path / "handled.jsonl"
    flags = ["--url", redis_url, "--prefix", prefix, "--health-port", "0"]
    for service in ("order_service", "shipping_service", "billing_service"):
        args = ["run", service, "--app", f"shop:{service}", *flags]
        processes.start(service, args, shop, TOOLKIT_TEST_LOG=str(log))
    # The host takes the App's --url and --prefix for its publisher: the events land
    # on this test's keys, nowhere else.
    order_id = str(uuid.uuid4())
    command_id = python("shop.py", redis_url, prefix, order_id, "acme", cwd=shop).strip()

    def records() -> list[dict[str, Any]]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    wait_for(lambda: len(records()) >= 4, what="four handlings")
    channels = [
        ("order_commands", "order_service"),
        ("shipping_orders", "shipping_service"),
        ("billing_orders", "billing_service"),
        ("billing_shipments", "billing_service"),
    ]
    wait_for(lambda: all(pending(redis_url, prefix, c, g) == 0 for c, g in channels))
    time.sleep(0.5)
    handled = records()
    assert Counter((r["service"], r["key"]) for r in handled) == {
        ("order_service", "order.place"): 1,
        ("shipping_service", "order.placed"): 1,
        ("billing_service", "order.placed"): 1,
        ("billing_service", "shipment.sent"): 1,
    }
    assert all(r["count"] == 1 for r in handled)
    billing_summary = processes.err("billing_service").splitlines()[0]
    assert "billing_service: consuming billing_orders, billing_shipments on" in billing_summary
    processes.stop_all()

    # Inside a handler, publishing is caused by the message handled, and the
    # declared metadata (``propagate = ["tenant"]``) follows, without being passed.
    by_key = {(r["service"], r["key"]): r for r in handled}
    placed_id = by_key["shipping_service", "order.placed"]["id"]
    assert by_key["billing_service", "order.placed"]["id"] == placed_id
    assert by_key["shipping_service", "order.placed"]["causation"] == command_id
    assert by_key["billing_service", "shipment.sent"]["causation"] == placed_id
    assert {r["correlation"] for r in handled} == {command_id}
    assert all(r["metadata"].get("tenant") == "acme" for r in handled)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_follows_subscription_and_redis_and_sigterm_exits_cleanly(
    tmp_path: Path, processes: Processes
) -> None:
    server = RedisServer(tmp_path / "redis").start()  # its own: this test kills it
    health = tmp_path / "health"
    try:
        args = [
            *("run", "ticket_service", "--app", "tests.redis.apps:Recorder", "--url", server.url),
            *("--health-port", "0", "--health-host", "127.0.0.1"),
            *("--health-file", str(health), "--health-interval", "0.1"),
        ]
        process = processes.start("host", args, ROOT, TOOLKIT_TEST_LOG=str(tmp_path / "log"))
        found = wait_for(
            lambda: re.search(r"http://127\.0\.0\.1:(\d+)/readyz", processes.err("host")),
            what="the startup summary",
        )
        port = int(found.group(1))
        assert http_get(port, "/livez") == (200, "[+]loop ok\nlivez check passed\n")
        status, body = wait_for(lambda: (r := http_get(port, "/readyz"))[0] == 200 and r)
        assert "[+]subscribed ok" in body and "[+]transport ok" in body
        wait_for(lambda: health.exists() and health.read_text() == "ready\n")

        server.kill()
        status, body = http_get(port, "/readyz")
        assert status == 503 and "[-]transport failed: cannot reach Redis" in body
        assert http_get(port, "/livez")[0] == 200  # a restart would not bring Redis back
        wait_for(lambda: health.read_text().startswith("not ready: transport: "))

        server.start()
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, what="ready again")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, processes.err("host")
        assert not health.exists()
        with pytest.raises(urllib.error.URLError):
            http_get(port, "/livez")
    finally:
        server.stop()


def test_an_app_that_does_not_give_a_dispatcher_is_a_clear_error(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "billing_service", "--app", "tests.test_host:BROKEN", "--url", redis_url]
    assert main([*argv, "--prefix", prefix]) == 2
    err = capsys.readouterr().err
    assert "toolkit run: App('billing_service'): handlers returned Billing; return the " in err
    assert "Traceback" not in err
