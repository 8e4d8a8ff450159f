"""Opening a PostgreSQL pipe from its URL (``postgresql://``, ``postgres://``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.pipe_settings import PipeSettings

if TYPE_CHECKING:
    from toolkit.channels.postgres.transport import PostgresTransport

__all__ = ["MissingDriver", "open_transport"]


class MissingDriver(ImportError):
    """psycopg, which the PostgreSQL pipe needs, is not installed."""


def open_transport(url: str, settings: PipeSettings) -> PostgresTransport:
    try:
        from toolkit.channels.postgres.transport import PostgresTransport
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("psycopg"):
            raise
        raise MissingDriver(
            'the PostgreSQL pipe needs psycopg 3: pip install "smart-endpoints[postgres]"'
        ) from exc
    return PostgresTransport(
        url,
        prefix=settings.prefix,
        visibility_timeout=settings.visibility_timeout,
        max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES,
    )
