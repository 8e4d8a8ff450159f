"""Opening a RabbitMQ pipe from its URL (``amqp://``, ``amqps://``).

``amqp://user:password@host:5672/vhost``; query options are aiormq's
(``?heartbeat=30``). Opening does no I/O: the transport connects on first use.
Importing this module loads the client (aio-pika and its aiormq): without it,
the ImportError names the missing module, and the pipe layer says what to
install (``pip install "smart-endpoints[rabbitmq]"``).
"""

from __future__ import annotations

# The rabbitmq extra installs aio-pika; the transport speaks through its protocol
# layer (aiormq) directly, for speed. Without aio-pika the pipe is not installed.
import aio_pika  # noqa: F401

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.rabbitmq.transport import RabbitTransport
from toolkit.pipe_settings import PipeSettings

__all__ = ["open_transport"]


def open_transport(url: str, settings: PipeSettings) -> RabbitTransport:
    return RabbitTransport(
        url,
        prefix=settings.prefix,
        max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES,
    )
