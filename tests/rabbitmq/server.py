"""A private RabbitMQ node for tests that stop or kill the broker (restart tests).

Started with its own node name, ports, data and log directories and config
(``rabbitmq-server`` as installed on this machine), so killing it disturbs
nobody else; :meth:`RabbitNode.stop` deletes it all. ``available()`` says
whether this machine can run one at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> bool:
    return shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None


class RabbitNode:
    def __init__(self) -> None:
        # Under /tmp, not pytest's tmp_path: the node runs as the rabbitmq user, which
        # cannot enter root's private pytest directories.
        directory = self.directory = Path(tempfile.mkdtemp(prefix="tk-rabbit-"))
        self.name = f"tk{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (directory / "enabled_plugins").write_text("[].\n")
        # As docs/rabbitmq.md#scheduled-messages advises: after a restart the broker may
        # expire messages before it has recovered the exchanges and bindings they are
        # dead-lettered through; its dead-letter worker then retries after this (3 min
        # by default), which would stall the scheduled messages' cascade that long.
        (directory / "advanced.config").write_text(
            "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 5000}]}].\n"
        )
        if os.geteuid() == 0:
            shutil.chown(directory, "rabbitmq", "rabbitmq")
            for child in directory.iterdir():
                shutil.chown(child, "rabbitmq", "rabbitmq")

    def _env(self) -> dict[str, str]:
        d = self.directory
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
        }

    def start(self, timeout: float = 90.0) -> RabbitNode:
        """Start the node (again, after :meth:`kill`), on the same ports and data."""
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"rabbitmq-server exited ({code})") from None
                time.sleep(0.2)
        raise RuntimeError("rabbitmq-server did not start in time")

    def _vm_pid(self) -> int | None:
        """The Erlang VM's pid, from the node's pid file (the VM runs as another user,
        in another session, so the process started here does not lead to it)."""
        try:
            return int((self.directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL the node's VM (no shutdown): only what it wrote to disk survives."""
        self._signal(signal.SIGKILL, 10)

    def terminate(self) -> None:
        """SIGTERM the node's VM: RabbitMQ shuts down cleanly (as a service manager's stop)."""
        self._signal(signal.SIGTERM, 60)

    def _signal(self, signum: int, wait: float) -> None:
        deadline = time.monotonic() + wait
        pid = self._vm_pid()
        while pid is None and self.process is not None and time.monotonic() < deadline:
            time.sleep(0.1)
            pid = self._vm_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
            (self.directory / "pid").unlink(missing_ok=True)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
