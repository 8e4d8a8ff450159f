"""Opening a RabbitMQ pipe from its URL (``amqp://``, ``amqps://``).

``amqp://user:password@host:5672/vhost``; query options are aiormq's
(``?heartbeat=30``). Opening does no I/O: the transport connects on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.pipe_settings import PipeSettings

if TYPE_CHECKING:
    from toolkit.channels.rabbitmq.transport import RabbitTransport

__all__ = ["MissingClient", "open_transport"]


class MissingClient(ImportError):
    """The RabbitMQ client library is not installed."""


def open_transport(url: str, settings: PipeSettings) -> RabbitTransport:
    try:
        from toolkit.channels.rabbitmq.transport import RabbitTransport
    except ModuleNotFoundError as exc:
        if exc.name not in ("aiormq", "pamqp", "aio_pika"):
            raise
        raise MissingClient(
            f"RabbitMQ pipes need aio-pika, which is not installed ({exc.name} is missing): "
            'pip install "smart-endpoints[rabbitmq]"'
        ) from exc
    return RabbitTransport(
        url,
        prefix=settings.prefix,
        max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES,
    )
