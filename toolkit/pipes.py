"""One transport over several pipes: each channel travels on the pipe bound to it.

:class:`Pipes` is a :class:`~toolkit.channels.base.Transport` (and a
dead-letter store) that hands each channel's sends, subscriptions and dead
letters to the transport of the pipe that carries it (the
:class:`~toolkit.pipe_settings.Bindings`). Everything that takes a
transport (the bus, the publishers, the runner, the service host) therefore
works over Redis, RabbitMQ and PostgreSQL at once, and moving a channel to
another pipe is a change of configuration only::

    pipes = Pipes.from_config()              # [tool.toolkit.pipes] + environment
    bus = publisher_bus("ticket_service", SERVICE_MAP, pipes)
    ...
    await pipes.close()

A pipe's transport is opened the first time one of its channels is used, so
a process never connects to a broker it has no channel on. :class:`SyncPipes`
does the same for code without an event loop (the sync publishers).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Self, TypeVar

from toolkit.channels.base import (
    DeadLetter,
    DeadLetterStore,
    ExpectsGroups,
    ReportsStatus,
    ScheduledMessage,
    Schedules,
    Subscription,
    SyncTransport,
    Transport,
)
from toolkit.channels.status import ChannelStatus
from toolkit.config import Config, load_config
from toolkit.envelope import Envelope
from toolkit.pipe_settings import (
    BindingError,
    Bindings,
    PipeSettings,
    bindings_from,
    pipe_module,
    redact,
    scheme,
)
from toolkit.priority import PrioritiesUnsupportedError
from toolkit.scheduling import SchedulingUnsupportedError, scheduled_any

__all__ = ["BindingError", "Pipes", "SyncPipes", "bindings_of_config", "open_transport"]

T = TypeVar("T")

#: the package that installs each scheme's client library
_EXTRAS: dict[str, str] = {
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "postgresql": "postgres",
    "postgres": "postgres",
}


def open_transport(url: str, settings: PipeSettings | None = None) -> Transport:
    """The transport of the pipe at ``url``, by its scheme; no I/O until it is used."""
    module_name = pipe_module(url)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(scheme(url))
        hint = f': pip install "smart-endpoints[{extra}]"' if extra else ""
        raise BindingError(
            f"the pipe at {redact(url)} needs a library that is not installed "
            f"({exc.name or exc}){hint}"
        ) from None
    transport: Transport = module.open_transport(url, settings or PipeSettings())
    return transport


def bindings_of_config(
    config: Config | None = None,
    *,
    url: str | None = None,
    pipe_args: Iterable[str] = (),
    bind_args: Iterable[str] = (),
) -> Bindings:
    """The bindings of ``[tool.toolkit]`` (the nearest pyproject.toml's when not given),
    the environment and the command line's ``--url``, ``--pipe`` and ``--bind``."""
    config = config or load_config()
    return bindings_from(
        pipes=config.pipes,
        channels=config.channel_pipes,
        default_pipe=config.default_pipe,
        redis_url=config.redis_url,
        url=url,
        pipe_args=pipe_args,
        bind_args=bind_args,
    )


class _Bound:
    """Bindings and settings, from the arguments or from the configuration."""

    def __init__(self, bindings: Bindings | None = None, settings: PipeSettings | None = None):
        self.bindings = bindings or Bindings()
        self.settings = settings or PipeSettings()

    @classmethod
    def from_config(
        cls,
        config: Config | None = None,
        settings: PipeSettings | None = None,
        *,
        url: str | None = None,
    ) -> Self:
        """As ``[tool.toolkit]`` (``config``, else the nearest pyproject.toml's) and the
        environment bind the channels (see :func:`~toolkit.pipe_settings.bindings_from`);
        ``url``: the default pipe's URL."""
        return cls(bindings_of_config(config, url=url), settings)


class Pipes(_Bound):
    """A transport that sends each channel through the pipe bound to it.

    ``transports`` gives ready transports for some pipes by name (tests, or a
    client the application built); the others are opened from their URL.
    """

    def __init__(
        self,
        bindings: Bindings | None = None,
        settings: PipeSettings | None = None,
        *,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        super().__init__(bindings, settings)
        self._open: dict[str, Transport] = dict(transports or {})
        self._owned: set[str] = set()
        #: channel -> groups, for pipes that want them before their first send
        self._expected: dict[str, tuple[str, ...]] = {}

    def transport(self, channel: str) -> Transport:
        """The transport carrying ``channel`` (opened on first use)."""
        return self.pipe(self.bindings.pipe_of(channel))

    def pipe(self, name: str) -> Transport:
        """The transport of pipe ``name`` (opened on first use)."""
        transport = self._open.get(name)
        if transport is None:
            transport = open_transport(self.bindings.pipes[name], self.settings)
            self._open[name] = transport
            self._owned.add(name)
            if isinstance(transport, ExpectsGroups):
                for channel, groups in self._expected.items():
                    if self.bindings.pipe_of(channel) == name:
                        transport.expect_groups(channel, groups)
        return transport

    def expect_groups(self, channel: str, groups: Iterable[str]) -> None:
        """Pass on to the channel's pipe, now if it is open, else when it opens
        (:class:`~toolkit.channels.base.ExpectsGroups`)."""
        self._expected[channel] = tuple(groups)
        transport = self._open.get(self.bindings.pipe_of(channel))
        if isinstance(transport, ExpectsGroups):
            transport.expect_groups(channel, self._expected[channel])

    def describe(self, channels: Iterable[str] | None = None) -> str:
        """Each pipe of ``channels`` with its redacted URL and the channels it carries."""
        return f"{self.bindings.describe(channels)} (prefix {self.settings.prefix})"

    async def check(self, channels: Iterable[str] | None = None) -> None:
        """Ask each pipe of ``channels`` (default: every pipe opened so far) whether it answers.

        Raises the pipe's :class:`~toolkit.TransportError` when one does not.
        """
        names = (
            set(self._open) if channels is None else {self.bindings.pipe_of(c) for c in channels}
        )
        for name in sorted(names):
            ping = getattr(self.pipe(name), "check", None)
            if callable(ping):
                await ping()

    # -- Transport ----------------------------------------------------------------------

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        transport = self.transport(channel)
        self._refuse_unsupported(channel, transport, envelopes)
        await transport.send(channel, envelopes)

    def _refuse_unsupported(
        self, channel: str, transport: object, envelopes: Sequence[Envelope]
    ) -> None:
        """The bus lets scheduled and prioritized messages through; the channel's pipe decides."""
        if not getattr(transport, "schedules_messages", False) and scheduled_any(envelopes):
            raise SchedulingUnsupportedError(str(self._lacks(channel, "cannot schedule messages")))
        if not getattr(transport, "prioritizes_messages", False) and any(
            e.headers.priority for e in envelopes
        ):
            raise PrioritiesUnsupportedError(
                str(self._lacks(channel, "cannot order messages by priority"))
            )

    async def subscribe(self, channel: str, group: str, consumer: str) -> Subscription:
        return await self.transport(channel).subscribe(channel, group, consumer)

    async def close(self) -> None:
        """Close the transports this object opened (not those it was given)."""
        owned, self._owned = self._owned, set()
        for name in sorted(owned):
            await self._open.pop(name).close()

    def _lacks(self, channel: str, what: str) -> BindingError:
        pipe = self.bindings.pipe_of(channel)
        url = redact(self.bindings.pipes[pipe])
        return BindingError(f"channel {channel!r} is on pipe {pipe!r} ({url}), which {what}")

    # -- DeadLetterStore ----------------------------------------------------------------

    def dead_letter_store(self, channel: str) -> DeadLetterStore:
        transport = self.transport(channel)
        if not isinstance(transport, DeadLetterStore):
            raise self._lacks(channel, "keeps no dead letters to list")
        return transport

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        return await self.dead_letter_store(channel).dead_letters(
            channel, routing_key=routing_key, count=count
        )

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        return await self.dead_letter_store(channel).dead_letter(channel, dead_letter_id)

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        return await self.dead_letter_store(channel).replay(channel, dead_letter_ids)

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        return await self.dead_letter_store(channel).purge(channel, dead_letter_ids)

    # -- Schedules ----------------------------------------------------------------------

    #: the bus lets scheduled and prioritized messages through; ``send`` refuses them
    #: per channel
    schedules_messages = True
    prioritizes_messages = True

    def scheduler(self, channel: str) -> Schedules:
        transport = self.transport(channel)
        if not isinstance(transport, Schedules):
            raise self._lacks(channel, "cannot schedule messages")
        return transport

    async def scheduled(self, channel: str, *, count: int | None = None) -> list[ScheduledMessage]:
        return await self.scheduler(channel).scheduled(channel, count=count)

    async def cancel_scheduled(self, channel: str, message_ids: Sequence[str]) -> int:
        return await self.scheduler(channel).cancel_scheduled(channel, message_ids)

    # -- ReportsStatus ------------------------------------------------------------------

    def reports_status(self, channel: str) -> bool:
        """Whether the pipe carrying ``channel`` can say what the channel holds."""
        return isinstance(self.transport(channel), ReportsStatus)

    async def status(self, channel: str) -> ChannelStatus:
        transport = self.transport(channel)
        if not isinstance(transport, ReportsStatus):
            raise self._lacks(channel, "reports no status")
        return await transport.status(channel)


class SyncPipes(_Bound):
    """:class:`Pipes` for code without an event loop: ``send_sync`` blocks until stored.

    A pipe whose package offers a synchronous transport (``open_sync_transport``
    in its ``pipe`` module: Redis) is used directly; the others run their
    asyncio transport on a private event loop in a daemon thread, started on
    first use. Thread-safe: several threads may send at once.
    """

    def __init__(self, bindings: Bindings | None = None, settings: PipeSettings | None = None):
        super().__init__(bindings, settings)
        #: None: the pipe has no synchronous transport, its sends go through the loop thread
        self._sync: dict[str, SyncTransport | None] = {}
        self._pipes = Pipes(self.bindings, self.settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    #: as :attr:`Pipes.schedules_messages` and :attr:`Pipes.prioritizes_messages`
    schedules_messages = True
    prioritizes_messages = True

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        name = self.bindings.pipe_of(channel)
        direct = self._sync_transport(name)
        if direct is not None:
            self._pipes._refuse_unsupported(channel, direct, envelopes)
            direct.send_sync(channel, envelopes)
            return
        self._call(self._pipes.send(channel, envelopes))

    def check(self) -> None:
        self._call(self._pipes.check(self.bindings.channels or None))

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
            sync, self._sync = self._sync, {}
        for transport in sync.values():
            closing = getattr(transport, "close", None)
            if callable(closing):
                closing()
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._pipes.close(), loop).result()
            loop.call_soon_threadsafe(loop.stop)

    def _sync_transport(self, name: str) -> SyncTransport | None:
        with self._lock:
            if name in self._sync:
                return self._sync[name]
            url = self.bindings.pipes[name]
            module = importlib.import_module(pipe_module(url))
            opener: Callable[[str, PipeSettings], SyncTransport] | None = getattr(
                module, "open_sync_transport", None
            )
            self._sync[name] = None if opener is None else opener(url, self.settings)
            return self._sync[name]

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="toolkit-sync-pipes", daemon=True
                ).start()
            loop = self._loop
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()
