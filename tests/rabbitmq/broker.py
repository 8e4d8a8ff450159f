"""The RabbitMQ the tests use: the local broker (``RABBITMQ_URL``, default guest on
127.0.0.1:5672), in a private vhost made for the test session and deleted after it.

Without ``rabbitmqctl`` (a remote broker) the tests use the URL's vhost and
keep apart by their unique prefixes. Skipped when no broker answers, except
under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def base_url() -> str:
    return os.environ.get("RABBITMQ_URL", DEFAULT_URL)


def require_broker(url: str) -> None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2).close()
    except OSError as exc:
        message = f"no RabbitMQ at {parts.hostname}:{parts.port or 5672} ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}, and CI=true: RabbitMQ tests must run in CI")
        pytest.skip(message)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


class Vhost:
    """A private vhost on the local broker (or the URL's own when it cannot make one)."""

    def __init__(self) -> None:
        url = base_url()
        require_broker(url)
        self.name: str | None = None
        self.url = url
        if shutil.which("rabbitmqctl") is None:
            return
        name = f"toolkit-test-{uuid.uuid4().hex[:8]}"
        user = urlsplit(url).username or "guest"
        try:
            rabbitmqctl("add_vhost", name)
            rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
            return
        self.name = name
        self.url = urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe="")))

    def delete(self) -> None:
        if self.name is not None:
            with contextlib.suppress(
                subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired
            ):
                rabbitmqctl("delete_vhost", self.name)
