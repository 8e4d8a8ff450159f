"""The consumer runner: one channel, one service, until told to stop or a limit is reached.

``toolkit run CHANNEL --service NAME --app module:object`` is this module
behind a command line; inside an existing asyncio application use
:class:`Runner` directly::

    dispatcher = generated.ticket_service.bind(MyHandlers())
    runner = Runner(RedisTransport(), "ticket_commands", dispatcher, RunOptions(concurrency=4))
    task = asyncio.create_task(runner.run())
    ...
    runner.stop()          # finishes and settles the batch in hand
    stats = await task

Stopping (``stop()``, or SIGTERM/SIGINT with ``handle_signals=True``) stops
reading, lets the batch in hand finish, acknowledges it, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from toolkit.channels.base import Transport
from toolkit.consumer import Consumer, ConsumerStats
from toolkit.dispatcher import Dispatcher
from toolkit.retry import RetryPolicy
from toolkit.service_map import ServiceMap

__all__ = ["AppError", "RunOptions", "Runner", "bind_app", "load_app", "rss_bytes"]

log = logging.getLogger("toolkit.runner")


class RunOptions(msgspec.Struct, frozen=True, kw_only=True):
    #: stop after this many messages processed (handled, skipped, retried or dead-lettered)
    limit: int | None = None
    #: stop after this many seconds
    time_limit: float | None = None
    #: stop (gracefully) once the process's resident memory exceeds this many bytes
    memory_limit: int | None = None
    #: stop after a batch in which a handler raised or a message was dead-lettered
    stop_on_failure: bool = False
    #: stop when there is nothing left to receive
    until_empty: bool = False
    batch_size: int = 100
    #: handlers of a batch run at once (order within a batch is then not kept)
    concurrency: int = 1
    #: longest wait for new messages before checking limits again, seconds
    block_timeout: float = 1.0
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)


class AppError(ValueError):
    """The ``--app`` object or the service cannot be loaded or bound."""


def rss_bytes() -> int:
    """Current resident set size (Linux), else the peak one."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class Runner:
    """Runs a :class:`~toolkit.consumer.Consumer` with limits and graceful stopping."""

    def __init__(
        self,
        transport: Transport,
        channel: str,
        dispatcher: Dispatcher,
        options: RunOptions | None = None,
        *,
        consumer_name: str | None = None,
    ) -> None:
        self.options = options = options or RunOptions()
        self.consumer = Consumer(
            transport,
            channel,
            dispatcher,
            consumer_name=consumer_name,
            batch_size=options.batch_size,
            block_timeout=options.block_timeout,
            retry=options.retry,
            concurrency=options.concurrency,
        )
        #: why ``run`` returned: "stopped", "limit", "time limit", "memory limit", "failure", "empty"
        self.reason = ""

    @property
    def stats(self) -> ConsumerStats:
        return self.consumer.stats

    def stop(self) -> None:
        """Stop reading; the batch in hand is finished and acknowledged first."""
        self.consumer.stop()

    def _over_memory(self) -> bool:
        limit = self.options.memory_limit
        if limit is None or rss_bytes() <= limit:
            return False
        self.reason = "memory limit"
        return True

    async def run(self, *, handle_signals: bool = False) -> ConsumerStats:
        """Consume until stopped or a limit is reached; closes the subscription on return.

        ``handle_signals`` makes SIGTERM and SIGINT stop the runner gracefully
        (only in the main thread; the previous handlers are restored after).
        """
        options = self.options
        consumer = self.consumer
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if handle_signals:
            for sig in (int(signal.SIGTERM), int(signal.SIGINT)):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        started = time.monotonic()
        before = consumer.stats.processed
        try:
            failures_before = _failures(consumer.stats)
            stats = await consumer.run(
                limit=options.limit,
                until_empty=options.until_empty,
                time_limit=options.time_limit,
                stop_on_failure=options.stop_on_failure,
                should_stop=self._over_memory if options.memory_limit is not None else None,
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await consumer.close()
        if not self.reason:
            if consumer.stopping:
                self.reason = "stopped"
            elif options.stop_on_failure and _failures(stats) > failures_before:
                self.reason = "failure"
            elif options.limit is not None and stats.processed - before >= options.limit:
                self.reason = "limit"
            elif options.until_empty:
                self.reason = "empty"
            else:
                self.reason = "time limit"
        elapsed = time.monotonic() - started
        log.info(
            "consumer %s on %s stopped (%s) after %.1fs: %d handled, %d skipped, %d retried, "
            "%d dead-lettered",
            consumer.consumer_name,
            consumer.channel,
            self.reason,
            elapsed,
            stats.handled,
            stats.skipped,
            stats.retried,
            stats.rejected + stats.failed,
        )
        return stats

    def _on_signal(self, sig: int) -> None:
        log.info("%s: finishing the batch in hand, then stopping", signal.Signals(sig).name)
        self.reason = "stopped"
        self.stop()


def _failures(stats: ConsumerStats) -> int:
    return stats.failed + stats.retried + stats.rejected


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (dotted attribute path allowed).

    A class or a plain function is called with no arguments (a factory);
    anything else is used as it is: a handler implementation or a Dispatcher.
    The current directory is importable, as with ``python -m``.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppError(f"--app must look like 'module:object', not {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppError(f"cannot import {module_name!r} for --app {spec}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppError(f"{module_name!r} has no attribute {attribute!r}") from None
    if inspect.isclass(target) or inspect.isfunction(target):
        target = target()
    if inspect.isawaitable(target):
        raise AppError(f"{spec} is an async factory; give a plain function or class")
    return target


def bind_app(app: Any, service: str, package: str, output: Path | None = None) -> Dispatcher:
    """Bind ``app`` with the generated ``<package>.<service>.bind`` (a Dispatcher is kept)."""
    if isinstance(app, Dispatcher):
        if app.service != service:
            raise AppError(f"--app gives a dispatcher for {app.service!r}, not {service!r}")
        return app
    module = _import_generated(f"{package}.{service}", output)
    bind = getattr(module, "bind", None)
    if bind is None:
        raise AppError(f"{package}.{service} has no bind(); is it a generated service package?")
    dispatcher: Dispatcher = bind(app)
    return dispatcher


def service_map_of(package: str, output: Path | None = None) -> ServiceMap:
    module = _import_generated(package, output)
    service_map = getattr(module, "SERVICE_MAP", None)
    if not isinstance(service_map, ServiceMap):
        raise AppError(f"{package} has no SERVICE_MAP; run `toolkit generate`")
    return service_map


def _import_generated(name: str, output: Path | None) -> Any:
    if output is not None:
        parent = str(output.resolve().parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise AppError(f"cannot import generated package {name!r}: {exc}") from exc
