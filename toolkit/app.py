"""The application object: a service's handlers, written once, run in memory or on a pipe.

An :class:`App` names its service, the generated publisher class and a
function that receives the host's :class:`HostContext` and returns the
service's dispatcher (from the generated ``bind()``)::

    def order_service(ctx: HostContext[OrderServicePublisher]) -> Dispatcher:
        return bind(Orders(ctx.publisher))

    orders = App("order_service", OrderServicePublisher, order_service)

Resources the handlers need (a database pool, an HTTP client) come from an
async context manager instead: the code before ``yield`` is the startup,
the code after it the shutdown, which runs once the last batch is settled::

    @contextlib.asynccontextmanager
    async def order_service(ctx: HostContext[OrderServicePublisher]) -> AsyncIterator[Dispatcher]:
        async with httpx.AsyncClient() as http:
            yield bind(Orders(ctx.publisher, http))

Why one function rather than separate startup and shutdown hooks: each
resource is a local variable of its real type (no attribute that is
``None`` until a hook ran, no untyped ``state`` bag), a shutdown runs only
for a startup that finished, and mypy checks that the handlers implement the
generated Protocol (``bind``'s parameter) and get the publisher the App names.

``toolkit run SERVICE --app module:orders`` runs it on Redis
(:class:`~toolkit.host.ServiceHost`); ``InMemorySystem.start(orders)`` runs
it in memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from toolkit.channels.base import Transport
from toolkit.dispatcher import Dispatcher
from toolkit.service_map import ServiceMap

__all__ = ["App", "AppError", "HostContext", "open_app"]

P = TypeVar("P")


class AppError(ValueError):
    """An application that cannot be loaded, bound or started as written."""


@dataclass(frozen=True, slots=True)
class HostContext(Generic[P]):
    """What the host gives an application: its publisher, transport, map and logger."""

    #: the service this process runs (its consumer group)
    service: str
    #: the service's generated publisher, sending through the host's transport
    #: (same URL, key prefix and connections as the consumers); None when the App names none
    publisher: P
    transport: Transport
    service_map: ServiceMap
    #: a logger named after the service
    log: logging.Logger


#: what an App's handlers function returns: the dispatcher, or a context manager yielding it
Made = Dispatcher | contextlib.AbstractAsyncContextManager[Dispatcher]


class App(Generic[P]):
    """A service's application: ``App(service, PublisherClass, handlers)``.

    ``handlers(ctx)`` returns the service's :class:`~toolkit.Dispatcher`, or
    an async context manager yielding it (startup before, shutdown after).
    Pass ``None`` as the publisher for a service that publishes nothing.
    """

    __slots__ = ("handlers", "publisher", "service")

    @overload
    def __init__(
        self: App[None],
        service: str,
        publisher: None,
        handlers: Callable[[HostContext[None]], Made],
    ) -> None: ...

    @overload
    def __init__(
        self,
        service: str,
        publisher: Callable[[Transport], P],
        handlers: Callable[[HostContext[P]], Made],
    ) -> None: ...

    def __init__(
        self,
        service: str,
        publisher: Callable[[Transport], Any] | None,
        handlers: Callable[[HostContext[Any]], Made],
    ) -> None:
        if not service or not isinstance(service, str):
            raise ValueError(f"an App needs a service name, not {service!r}")
        if not callable(handlers):
            raise TypeError(f"App({service!r}): handlers must be callable, not {handlers!r}")
        self.service = service
        self.publisher = publisher
        self.handlers = handlers

    def __repr__(self) -> str:
        name = getattr(self.handlers, "__qualname__", repr(self.handlers))
        return f"App({self.service!r}, handlers={name})"


@contextlib.asynccontextmanager
async def open_app(
    app: App[P], transport: Transport, service_map: ServiceMap
) -> AsyncIterator[tuple[HostContext[P], Dispatcher]]:
    """Build the context, start the application, yield its dispatcher; shut it down on exit."""
    if app.service not in service_map.services:
        known = ", ".join(service_map.services) or "none"
        raise AppError(f"App({app.service!r}): the service map has no such service ({known})")
    publisher: Any = None if app.publisher is None else app.publisher(transport)
    ctx = HostContext(
        service=app.service,
        publisher=publisher,
        transport=transport,
        service_map=service_map,
        log=logging.getLogger(app.service),
    )
    made = app.handlers(ctx)
    if isinstance(made, Dispatcher):
        yield ctx, _checked(app, made)
    elif isinstance(made, contextlib.AbstractAsyncContextManager):
        async with made as dispatcher:
            yield ctx, _checked(app, dispatcher)
    else:
        raise AppError(
            f"App({app.service!r}): handlers returned {type(made).__name__}; return the "
            "Dispatcher of the generated bind(), or an async context manager yielding it"
        )


def _checked(app: App[Any], dispatcher: object) -> Dispatcher:
    if not isinstance(dispatcher, Dispatcher):
        raise AppError(
            f"App({app.service!r}): handlers yielded {type(dispatcher).__name__}, not the "
            "Dispatcher of the generated bind()"
        )
    if dispatcher.service != app.service:
        raise AppError(
            f"App({app.service!r}): handlers returned the dispatcher of {dispatcher.service!r}"
        )
    return dispatcher
