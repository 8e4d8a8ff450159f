"""What every pipe is opened with: its URL's scheme picks the transport, these settings tune it.

A *pipe* is a broker reached by URL (``redis://``, ``amqp://``,
``postgresql://``, ``memory://``). Each pipe package has a module ``pipe``
with ``open_transport(url, settings) -> Transport``; :data:`SCHEMES` says
which package serves which scheme. Opening does no I/O: the transport
connects on first use, and its ``check()`` says whether the server answers.

This module is a leaf: it names the packages, it does not import them, so
reading the configuration never loads a broker client.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

__all__ = [
    "DEFAULT_PREFIX",
    "SCHEMES",
    "PipeSettings",
    "UnknownScheme",
    "pipe_module",
    "redact",
    "scheme",
]

#: the prefix of every name a pipe creates (Redis keys, RabbitMQ queues, PostgreSQL schema)
DEFAULT_PREFIX: Final = "toolkit"

#: URL scheme -> the module with ``open_transport(url, settings)``
SCHEMES: Final[dict[str, str]] = {
    "redis": "toolkit.channels.redis.pipe",
    "rediss": "toolkit.channels.redis.pipe",
    "unix": "toolkit.channels.redis.pipe",
    "amqp": "toolkit.channels.rabbitmq.pipe",
    "amqps": "toolkit.channels.rabbitmq.pipe",
    "postgresql": "toolkit.channels.postgres.pipe",
    "postgres": "toolkit.channels.postgres.pipe",
    "memory": "toolkit.channels.memory.pipe",
}


class UnknownScheme(ValueError):
    """A pipe URL whose scheme no pipe serves."""


class PipeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings every pipe understands; a pipe ignores those it has no use for."""

    #: the prefix of every name the pipe creates, so several systems can share a server
    prefix: str = DEFAULT_PREFIX
    #: seconds a received, unsettled message stays with its consumer without a renewal
    visibility_timeout: float = 30.0
    #: larger bodies are dead-lettered unread; None: the pipe's default (16 MiB)
    max_message_bytes: int | None = None
    #: Redis: forget consumers that own nothing and were idle this long (None: never)
    idle_consumer_timeout: float | None = 3600.0
    #: Redis: trim entries every group has acknowledged, at most every ``trim_interval`` s
    trim_acknowledged: bool = False
    trim_interval: float = 10.0


def scheme(url: str) -> str:
    """The URL's scheme, lower case; raises :class:`UnknownScheme` for one no pipe serves."""
    found = urlsplit(url).scheme.lower()
    if found not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        what = f"scheme {found}://" if found else "no scheme"
        raise UnknownScheme(f"pipe URL {redact(url)!r} has {what}; pipes serve {known}")
    return found


def pipe_module(url: str) -> str:
    """The module that opens ``url``'s transport."""
    return SCHEMES[scheme(url)]


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
