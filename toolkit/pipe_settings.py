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

import os
import re
from collections.abc import Iterable, Mapping
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
DEFAULT_PREFIX: Final = "tk"

#: the name of the pipe that carries every channel not bound to another
DEFAULT_PIPE: Final = "default"
#: the default pipe's URL when nothing says otherwise
DEFAULT_URL: Final = "redis://localhost:6379/0"

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


class BindingError(ValueError):
    """The pipes or the channel bindings are configured wrongly (the message says how)."""


class UnknownScheme(BindingError):
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


_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class Bindings(msgspec.Struct, frozen=True, kw_only=True):
    """Which pipe carries each channel: deployment, not contract.

    ``pipes`` maps a pipe's name to its URL; ``channels`` binds a channel to a
    pipe's name; every other channel is carried by the ``default`` pipe.
    Build one with :func:`bindings_from` (configuration, environment, command
    line), or by hand: ``Bindings(pipes={"default": "redis://..."})``.
    """

    pipes: dict[str, str] = msgspec.field(default_factory=lambda: {DEFAULT_PIPE: DEFAULT_URL})
    channels: dict[str, str] = msgspec.field(default_factory=dict)
    default: str = DEFAULT_PIPE

    def __post_init__(self) -> None:
        for name, url in self.pipes.items():
            if not _NAME.match(name):
                raise BindingError(
                    f"pipe name {name!r} must start with a letter and hold only letters, "
                    "digits and '_' (it is also an environment variable's name: TOOLKIT_PIPE_NAME)"
                )
            scheme(url)
        known = ", ".join(sorted(self.pipes)) or "none"
        if self.default not in self.pipes:
            raise BindingError(f"the default pipe {self.default!r} has no URL (pipes: {known})")
        for channel, pipe in self.channels.items():
            if pipe not in self.pipes:
                raise BindingError(
                    f"channel {channel!r} is bound to pipe {pipe!r}, which has no URL "
                    f"(pipes: {known}); add it under [tool.toolkit.pipes] or set "
                    f"TOOLKIT_PIPE_{pipe.upper()}"
                )

    def pipe_of(self, channel: str) -> str:
        """The name of the pipe that carries ``channel``."""
        return self.channels.get(channel, self.default)

    def url_of(self, channel: str) -> str:
        return self.pipes[self.pipe_of(channel)]

    def check_channels(self, known: Iterable[str]) -> None:
        """Raise :class:`BindingError` when a binding names a channel not in ``known``.

        A misspelt channel would otherwise go to the default pipe unnoticed.
        """
        known = set(known)
        unknown = sorted(set(self.channels) - known)
        if unknown:
            raise BindingError(
                f"pipe bindings name channels the service map does not have: "
                f"{', '.join(unknown)} (channels: {', '.join(sorted(known)) or 'none'})"
            )

    def describe(self, channels: Iterable[str] | None = None) -> str:
        """Where ``channels`` travel, for logs: the redacted URL when one pipe carries them
        all, else each pipe's URL with its channels in brackets."""
        chosen = sorted(self.channels if channels is None else channels)
        used: dict[str, list[str]] = {}
        for channel in chosen:
            used.setdefault(self.pipe_of(channel), []).append(channel)
        if len(used) <= 1:
            return redact(self.pipes[next(iter(used), self.default)])
        return ", ".join(
            f"{redact(self.pipes[name])} ({', '.join(carried)})"
            for name, carried in sorted(used.items())
        )


def _pair(text: str, what: str) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    if not sep or not left or not right:
        raise BindingError(f"{what} must look like NAME=VALUE, not {text!r}")
    return left.strip(), right.strip()


def bindings_from(
    *,
    pipes: Mapping[str, str] | None = None,
    channels: Mapping[str, str] | None = None,
    default_pipe: str | None = None,
    redis_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    url: str | None = None,
    pipe_args: Iterable[str] = (),
    bind_args: Iterable[str] = (),
) -> Bindings:
    """The bindings from configuration, then the environment, then the command line.

    Later sources win. ``pipes``, ``channels``, ``default_pipe`` and
    ``redis_url`` are ``[tool.toolkit]``'s settings. From the environment:
    ``TOOLKIT_PIPE_<NAME>=URL`` gives pipe NAME's URL, ``TOOLKIT_CHANNEL_<CHANNEL>=PIPE``
    binds a channel, ``TOOLKIT_DEFAULT_PIPE=NAME`` names the default pipe,
    and ``REDIS_URL`` is the default pipe's URL when nothing else gives one.
    From the command line: ``url`` (``--url``) is the default pipe's URL,
    ``pipe_args`` (``--pipe NAME=URL``) and ``bind_args`` (``--bind
    CHANNEL=PIPE``). Where a channel is bound, a URL may stand for a pipe's
    name: it becomes a pipe of its own.
    """
    env = os.environ if environ is None else environ
    named: dict[str, str] = dict(pipes or {})
    bound: dict[str, str] = dict(channels or {})
    default = env.get("TOOLKIT_DEFAULT_PIPE") or default_pipe or DEFAULT_PIPE
    for key, value in env.items():
        if key.startswith("TOOLKIT_PIPE_") and value:
            named[_env_name(key[len("TOOLKIT_PIPE_") :], named)] = value
        elif key.startswith("TOOLKIT_CHANNEL_") and value:
            bound[key[len("TOOLKIT_CHANNEL_") :].lower()] = value
    for text in pipe_args:
        name, value = _pair(text, "--pipe")
        named[name] = value
    for text in bind_args:
        channel, pipe = _pair(text, "--bind")
        bound[channel] = pipe
    if url:
        named[default] = url
    elif default not in named:
        named[default] = env.get("REDIS_URL") or redis_url or DEFAULT_URL
    for channel, pipe in list(bound.items()):
        if "://" in pipe:
            same = [n for n, u in named.items() if u == pipe]
            if not same:
                same.append(f"pipe_{len(named)}")
                named[same[0]] = pipe
            bound[channel] = same[0]
    return Bindings(pipes=named, channels=bound, default=default)


def _env_name(upper: str, named: Mapping[str, str]) -> str:
    """A configured pipe's own spelling for ``TOOLKIT_PIPE_<UPPER>``, else lower case."""
    for name in named:
        if name.upper() == upper:
            return name
    return upper.lower()
