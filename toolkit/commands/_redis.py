"""Options shared by the commands that talk to Redis (``run``, ``dlq``)."""

from __future__ import annotations

import argparse
import os

from toolkit.channels.redis.keys import DEFAULT_PREFIX
from toolkit.config import ConfigError, load_config

__all__ = ["add_redis_flags", "redis_url_from"]


def add_redis_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="Redis URL: redis://[user:password@]host:port/db, rediss://..., unix:///path.sock "
        "(default: $REDIS_URL, else [tool.toolkit] redis_url, else redis://localhost:6379/0)",
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help=f"key prefix of the channels' Redis keys (default: {DEFAULT_PREFIX})",
    )


def redis_url_from(args: argparse.Namespace) -> str | None:
    url: str | None = args.url or os.environ.get("REDIS_URL")
    if url:
        return url
    try:
        return load_config().redis_url
    except ConfigError:
        return None
