"""Opening a PostgreSQL pipe from its URL (``postgresql://``, ``postgres://``)."""

from __future__ import annotations

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.postgres.transport import PostgresTransport
from toolkit.pipe_settings import PipeSettings

__all__ = ["open_transport"]


def open_transport(url: str, settings: PipeSettings) -> PostgresTransport:
    """Without psycopg this module does not import: :func:`toolkit.pipes.open_transport`
    says which extra to install."""
    return PostgresTransport(
        url,
        prefix=settings.prefix,
        visibility_timeout=settings.visibility_timeout,
        max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES,
    )
