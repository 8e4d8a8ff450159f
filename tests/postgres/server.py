"""The PostgreSQL the tests use: the shared server (a private schema per test), or a
private cluster of their own (``PrivateCluster``) for the tests that restart it.

``TOOLKIT_TEST_POSTGRES_URL`` names the shared server (default: user postgres,
database ``test`` on 127.0.0.1:5432). Tests are skipped when it does not
answer, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

URL = os.environ.get("TOOLKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require_postgres(url: str = URL) -> str:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL does not answer at {url} and CI=true: {exc}")
        pytest.skip(f"PostgreSQL does not answer at {url}: {exc}")
    return url


def unique_schema(tag: str = "t") -> str:
    return f"{tag}_{uuid.uuid4().hex[:10]}"


def drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.glob("*/bin/pg_ctl")) if root.exists() else []
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb in a temporary directory, a free
    port), which it may stop, start and restart without disturbing anyone."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("pg_ctl/initdb are not installed, and CI=true")
            pytest.skip("pg_ctl/initdb are not installed")
        self.bin = bin_dir
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.dir = directory = Path(tempfile.mkdtemp(prefix="toolkit-pg-"))
        self.data = directory / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(directory, "postgres", "postgres")
            self._user = ["su", "postgres", "-c"]

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._user:
            command = [*self._user, " ".join(f"'{a}'" for a in command)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> PrivateCluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        return self.start()

    def start(self) -> PrivateCluster:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return self
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the server (if running) and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()
