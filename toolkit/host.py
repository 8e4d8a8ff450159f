"""The service host: one process runs a whole service.

:class:`ServiceHost` starts the service's :class:`~toolkit.app.App` (or takes
a ready :class:`~toolkit.Dispatcher`), consumes every channel the service
map gives the service (or the ones named) with one
:class:`~toolkit.runner.Runner` on one transport, which the App's publisher
sends through too, and reports liveness and readiness
(:mod:`toolkit.health`). ``toolkit run SERVICE --app module:object`` is this
class behind a command line::

    transport = RedisTransport(url, prefix="shop")
    host = ServiceHost(transport, orders, SERVICE_MAP, RunOptions(concurrency=4))
    stats = await host.run(handle_signals=True)
    await transport.close()

Order of events: health server up (live, not ready) → the App's startup →
subscriptions open (ready) → consuming → a stop or a limit: the batches in
hand are finished and acknowledged (not ready from the stop on) → the App's
shutdown → health server down. Several processes of one service share the
work: each channel's consumer group is the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from toolkit.app import App, open_app
from toolkit.channels.base import Transport
from toolkit.consumer import ConsumerStats, default_consumer_name
from toolkit.dispatcher import Dispatcher
from toolkit.health import Check, Health, HealthOptions
from toolkit.pipe_settings import redact
from toolkit.runner import Runner, RunOptions
from toolkit.service_map import ServiceMap

__all__ = ["HostError", "ServiceHost", "describe_transport"]

log = logging.getLogger("toolkit.host")

#: longest wait for the transport to answer a readiness probe, seconds
_PING_TIMEOUT: Final = 2.0


class HostError(ValueError):
    """The host cannot run as configured (unknown channel, health port taken...)."""


def describe_transport(transport: Transport, channels: Sequence[str] | None = None) -> str:
    """Where the transport's channels live, for logs: URLs without password, and the prefix."""
    describe = getattr(transport, "describe", None)
    if callable(describe):  # Pipes: each pipe with the channels it carries
        return str(describe(channels))
    url = getattr(transport, "url", None)
    if not isinstance(url, str):
        return type(transport).__name__
    prefix = getattr(transport, "prefix", None)
    return redact(url) + (f" (prefix {prefix})" if prefix else "")


class ServiceHost:
    """Runs one service of ``service_map``: its application, its channels, its health."""

    def __init__(
        self,
        transport: Transport,
        app: App[Any] | Dispatcher,
        service_map: ServiceMap,
        options: RunOptions | None = None,
        *,
        channels: Sequence[str] | None = None,
        consumer_name: str | None = None,
        health: HealthOptions | None = None,
    ) -> None:
        self.transport = transport
        self.app = app
        self.service_map = service_map
        self.service = app.service
        self.options = options or RunOptions()
        self.channels = select_channels(service_map, self.service, channels)
        self.consumer_name = consumer_name or default_consumer_name()
        self.health = Health(health or HealthOptions(), self._readiness)
        self.runner: Runner | None = None
        #: the App's startup has finished (and its shutdown not begun)
        self.started = False
        self._stopping = False

    @property
    def reason(self) -> str:
        """Why ``run`` returned (:attr:`Runner.reason <toolkit.runner.Runner.reason>`)."""
        return self.runner.reason if self.runner is not None else ""

    def stop(self) -> None:
        """Finish the batches in hand, acknowledge them, shut the App down, return from ``run``."""
        self._stopping = True
        if self.runner is not None:
            self.runner.stop()

    def summary(self) -> str:
        """One line: service, channels, pipe, group, consumer name, health."""
        where = [f"health http://{self.health.options.host}:{self.health.port}/readyz"]
        if self.health.port is None:
            where = []
        if self.health.options.file is not None:
            where.append(f"health file {self.health.options.file}")
        return ", ".join(
            [
                f"{self.service}: consuming {', '.join(self.channels)} on "
                f"{describe_transport(self.transport, self.channels)}",
                f"group {self.service}",
                f"consumer {self.consumer_name}",
                *where,
            ]
        )

    async def run(
        self, *, handle_signals: bool = False, announce: Callable[[str], None] | None = None
    ) -> ConsumerStats:
        """Start, consume until stopped or a limit is reached, shut down; the run's stats.

        ``announce`` receives :meth:`summary` once the health server listens
        (default: logged at INFO). ``handle_signals``: SIGTERM and SIGINT stop
        the host gracefully once it consumes (before that they end the
        process: nothing has been received yet).
        """
        try:
            await self.health.start()
        except OSError as exc:
            await self.health.close()
            raise HostError(f"cannot serve health checks: {exc}") from exc
        try:
            (announce or log.info)(self.summary())
            app = self.app
            if isinstance(app, Dispatcher):
                return await self._consume(app, handle_signals)
            async with open_app(app, self.transport, self.service_map) as (_, dispatcher):
                return await self._consume(dispatcher, handle_signals)
        finally:
            self.started = False
            await self.health.close()

    async def _consume(self, dispatcher: Dispatcher, handle_signals: bool) -> ConsumerStats:
        self.started = True
        runner = self.runner = Runner(
            self.transport,
            self.channels,
            # The map decides what each channel delivers, also to a hand-made dispatcher.
            dispatcher.with_service_map(self.service_map),
            self.options,
            consumer_name=self.consumer_name,
        )
        if self._stopping:
            runner.stop()
        try:
            return await runner.run(handle_signals=handle_signals)
        finally:
            self.started = False  # not ready while the App shuts down

    async def _readiness(self) -> list[Check]:
        runner = self.runner
        if self._stopping or (runner is not None and runner.stopping):
            return [Check("running", False, "stopping")]
        checks = [
            Check("startup", self.started, "" if self.started else "the App is starting"),
            Check(
                "subscribed",
                runner is not None and runner.subscribed,
                "" if runner is not None and runner.subscribed else "opening the subscriptions",
            ),
        ]
        ping = getattr(self.transport, "check", None)
        if callable(ping):
            try:
                await asyncio.wait_for(ping(), _PING_TIMEOUT)
            except Exception as exc:
                detail = str(exc) or f"no answer in {_PING_TIMEOUT:g}s"
                checks.append(Check("transport", False, detail))
            else:
                checks.append(Check("transport", True))
        return checks


def select_channels(
    service_map: ServiceMap, service: str, wanted: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The channels ``service`` consumes, or those of ``wanted`` (each checked against the map)."""
    consumed = [c.name for c in service_map.channels_consumed_by(service)]
    if service not in service_map.services:
        known = ", ".join(service_map.services) or "none"
        raise HostError(f"the service map has no service {service!r} (services: {known})")
    if wanted:
        unknown = [c for c in wanted if c not in consumed]
        if unknown:
            raise HostError(
                f"the service map says {service!r} does not consume "
                f"{', '.join(map(repr, unknown))} (it consumes: {', '.join(consumed) or 'nothing'})"
            )
        return tuple(dict.fromkeys(wanted))
    if not consumed:
        raise HostError(
            f"{service!r} consumes nothing: it owns no command and subscribes to no event"
        )
    return tuple(consumed)
