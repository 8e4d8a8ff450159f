"""Liveness and readiness of a host process, the way Kubernetes probes them.

* HTTP (``HealthOptions(port=…)``, ``toolkit run --health-port``): ``GET
  /livez`` and ``GET /readyz`` answer 200 when every check passes, else 503,
  with one ``[+]name ok`` / ``[-]name failed: why`` line per check (the
  format of the Kubernetes API server's own probes). asyncio's server, no
  dependency.
* A file (``HealthOptions(file=…)``, ``--health-file``): rewritten every
  ``interval`` seconds while the event loop turns, holding ``ready`` or
  ``not ready: why``. Its age says whether the process is alive, its text
  whether it is ready; it is removed on exit.

Liveness means the event loop is turning: a heartbeat task beats every
second, and ``/livez`` fails once the last beat is older than
``stale_after`` (a loop blocked that long does not answer at all, so a
probe's timeout catches the rest). What readiness means is the caller's
``ready`` function.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

__all__ = ["Check", "Health", "HealthOptions"]

log = logging.getLogger("toolkit.health")

_BEAT: Final = 1.0
#: longest wait for a probe's request line and headers, seconds
_REQUEST_TIMEOUT: Final = 5.0


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str = ""


class HealthOptions(msgspec.Struct, frozen=True, kw_only=True):
    #: serve /livez and /readyz on this TCP port (0: any free port); None: no server
    port: int | None = None
    #: address to listen on; all interfaces, as the kubelet probes the pod's IP
    host: str = "0.0.0.0"
    #: rewrite this file every ``interval`` seconds (see the module docs); None: no file
    file: str | None = None
    interval: float = 5.0
    #: liveness fails when the event loop has not turned for this many seconds
    stale_after: float = 10.0

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"health port must be 0-65535, not {self.port}")
        if self.interval <= 0 or self.stale_after <= 0:
            raise ValueError("health interval and stale_after must be positive")

    @property
    def enabled(self) -> bool:
        return self.port is not None or self.file is not None


class Health:
    """Serves a process's liveness and its ``ready()`` checks over HTTP and/or a file."""

    def __init__(
        self, options: HealthOptions, ready: Callable[[], Awaitable[Sequence[Check]]]
    ) -> None:
        self.options = options
        self._ready = ready
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._beat = time.monotonic()

    @property
    def port(self) -> int | None:
        """The port the server listens on (the one chosen, with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        options = self.options
        self._beat = time.monotonic()
        self._tasks.append(asyncio.create_task(self._heartbeat()))
        if options.port is not None:
            self._server = await asyncio.start_server(self._serve, options.host, options.port)
        if options.file is not None:
            await self._write_file()  # at once: a probe may look before the first interval
            self._tasks.append(asyncio.create_task(self._file_loop(Path(options.file))))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.options.file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.options.file)

    def live(self) -> list[Check]:
        idle = time.monotonic() - self._beat
        if idle > self.options.stale_after:
            return [Check("loop", False, f"the event loop has not turned for {idle:.1f}s")]
        return [Check("loop", True)]

    async def ready(self) -> list[Check]:
        return [*self.live(), *await self._ready()]

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(_BEAT)

    async def _file_loop(self, path: Path) -> None:
        while True:
            await asyncio.sleep(self.options.interval)
            try:
                await self._write_file()
            except OSError as exc:
                log.warning("cannot write the health file %s: %s", path, exc)

    async def _write_file(self) -> None:
        checks = await self.ready()
        failed = [c for c in checks if not c.ok]
        text = "ready\n" if not failed else "not ready: " + "; ".join(map(_why, failed)) + "\n"
        path = Path(self.options.file or "")
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)  # readers never see half a file

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            method, _, rest = request.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            if method not in (b"GET", b"HEAD"):
                status, body = "405 Method Not Allowed", "GET or HEAD\n"
            elif path == b"/livez":
                status, body = _report("livez", self.live())
            elif path == b"/readyz":
                status, body = _report("readyz", await self.ready())
            else:
                status, body = "404 Not Found", "/livez or /readyz\n"
            data = body.encode()
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == b"HEAD" else data))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a client that went away or sent no request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _why(check: Check) -> str:
    return f"{check.name}: {check.detail}" if check.detail else check.name


def _report(probe: str, checks: Sequence[Check]) -> tuple[str, str]:
    lines = [f"[+]{c.name} ok" if c.ok else f"[-]{c.name} failed: {c.detail}" for c in checks]
    passed = all(c.ok for c in checks)
    lines.append(f"{probe} check {'passed' if passed else 'failed'}")
    return ("200 OK" if passed else "503 Service Unavailable"), "\n".join(lines) + "\n"
