"""What an AMQP error means to the transport: transient (an outage) or real.

Transient: the connection is lost or refused, a channel closed because its
connection did, a timeout. Raised as :class:`RabbitUnavailable` (a
:class:`~toolkit.channels.base.TransportError`): the consumer keeps what it
owes, backs off and tries again on a fresh connection. Channel errors the
broker raises for a reason (a queue declared with other arguments, access
refused) are real and raised as they are.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiormq.exceptions import (
    AMQPConnectionError,
    ChannelAccessRefused,
    ChannelClosed,
    ChannelInvalidStateError,
    ChannelLockedResource,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    DuplicateConsumerTag,
)

from toolkit.channels.base import TransportError
from toolkit.pipe_settings import redact

__all__ = ["RabbitUnavailable", "is_transient", "unavailable", "unreachable"]


class RabbitUnavailable(TransportError):
    """RabbitMQ cannot be reached at the configured URL, or the connection was lost."""


_REAL = (
    ChannelAccessRefused,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    ChannelLockedResource,
    DuplicateConsumerTag,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, _REAL):
        return False
    return isinstance(
        exc,
        AMQPConnectionError
        | ChannelClosed
        | ChannelInvalidStateError
        | ConnectionError
        | OSError
        | asyncio.TimeoutError,
    )


def unavailable(what: str, exc: BaseException) -> RabbitUnavailable:
    """The error for a transient failure while doing ``what``; caused by ``exc``."""
    if isinstance(exc, RabbitUnavailable):
        return exc
    error = RabbitUnavailable(f"RabbitMQ unavailable while {what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def unreachable(url: str, exc: BaseException) -> RabbitUnavailable:
    """The error of a connection that could not be opened: the URL without its password."""
    text = str(exc) or type(exc).__name__
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    error = RabbitUnavailable(
        f"cannot reach RabbitMQ at {redact(url)}: {text} "
        "(pass --url amqp://user:password@host:5672/vhost; is the server running?)"
    )
    error.__cause__ = exc
    return error
