"""Options shared by the commands that talk to pipes (``run``, ``dlq``, ``groups``).

Which pipe carries each channel comes from ``[tool.toolkit]`` (``pipes``,
``channels``, ``default_pipe``), the environment (``TOOLKIT_PIPE_<NAME>``,
``TOOLKIT_CHANNEL_<CHANNEL>``, ``TOOLKIT_DEFAULT_PIPE``, ``REDIS_URL``) and
these flags, later ones winning (:func:`toolkit.pipe_settings.bindings_from`).
"""

from __future__ import annotations

import argparse

from toolkit.config import Config, ConfigError, load_config
from toolkit.pipe_settings import DEFAULT_PREFIX, Bindings

__all__ = ["add_pipe_flags", "bindings_from_args"]


def add_pipe_flags(parser: argparse.ArgumentParser) -> None:
    pipes = parser.add_argument_group(
        "pipes (default: [tool.toolkit] pipes and channels, TOOLKIT_PIPE_<NAME>, "
        "TOOLKIT_CHANNEL_<CHANNEL>; see docs/pipes.md)"
    )
    pipes.add_argument(
        "--url",
        help="URL of the default pipe: redis://[user:password@]host:port/db, rediss://..., "
        "unix:///path.sock, amqp://user:password@host:port/vhost, "
        "postgresql://user@host:port/database (default: [tool.toolkit.pipes] default, "
        "else $REDIS_URL, else [tool.toolkit] redis_url, else redis://localhost:6379/0)",
    )
    pipes.add_argument(
        "--pipe",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="give pipe NAME this URL (repeatable)",
    )
    pipes.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="CHANNEL=PIPE",
        help="carry CHANNEL on pipe PIPE, a name or a URL (repeatable)",
    )
    pipes.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of every name the pipes create: Redis keys, RabbitMQ queues and "
        f"exchanges, the PostgreSQL schema (default: {DEFAULT_PREFIX})",
    )


def bindings_from_args(args: argparse.Namespace, config: Config | None = None) -> Bindings:
    """The bindings of the configuration, the environment and the flags.

    Raises :class:`~toolkit.pipe_settings.BindingError` (a ValueError) when
    they do not fit together; a pyproject.toml that cannot be read counts as
    no configuration here (the commands that need it say so themselves).
    """
    from toolkit.pipes import bindings_of_config

    if config is None:
        try:
            config = load_config()
        except ConfigError:
            config = None
    if config is None:
        from toolkit.pipe_settings import bindings_from

        return bindings_from(url=args.url, pipe_args=args.pipe, bind_args=args.bind)
    return bindings_of_config(config, url=args.url, pipe_args=args.pipe, bind_args=args.bind)
