"""The AMQP connection of a transport: opened on first use, opened again after an outage.

Every channel opened on a connection belongs to its *generation*; when the
connection is lost, the broker requeues what was delivered on it and not
acknowledged, so settlements of deliveries from an earlier generation are
dropped (the messages come again) instead of being sent on a new channel,
where their delivery tags would mean nothing.

Publishing goes through :func:`publish_many`: a batch of messages written as
one frame buffer under the channel's lock, each with its publisher
confirmation; aiormq's ``basic_publish`` awaits one message at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.header import ContentHeader

from toolkit.channels.rabbitmq.errors import is_transient, unavailable, unreachable

__all__ = ["Link", "Outgoing", "publish_many"]

_CONNECT_TIMEOUT: Final = 10.0

#: one message to publish: exchange, routing key, headers, body, and the AMQP
#: ``message_id`` property (None: none; the envelope's id is in the headers)
Outgoing = tuple[str, str, dict[str, Any], bytes, str | None]


class Link:
    """One AMQP connection, (re)opened on demand; ``generation`` counts the openings."""

    def __init__(self, url: str, timeout: float = _CONNECT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.generation = 0
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def connection(self) -> aiormq.abc.AbstractConnection:
        if self._connection is not None and not self._connection.is_closed:
            return self._connection
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed:
                return self._connection
            if self._closed:
                raise unavailable("connecting", ConnectionError("the transport is closed"))
            try:
                connection = await asyncio.wait_for(aiormq.connect(self.url), self.timeout)
            except Exception as exc:
                raise unreachable(self.url, exc) from exc
            self._connection = connection
            self.generation += 1
            return connection

    async def channel(self, *, confirms: bool = False) -> aiormq.abc.AbstractChannel:
        """A new channel on the current connection; raises ``RabbitUnavailable`` when down."""
        connection = await self.connection()
        try:
            async with asyncio.timeout(self.timeout):
                channel = await connection.channel(publisher_confirms=confirms)
        except Exception as exc:
            if is_transient(exc):
                raise unavailable("opening a channel", exc) from exc
            raise
        return channel

    def reset(self) -> None:
        """Give up the current connection (it stopped answering): the next use opens a
        new one. aiormq does not always notice a connection the broker dropped while
        frames were waiting to be written; a new connection does not depend on it."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            task = asyncio.ensure_future(connection.close())
            task.add_done_callback(_ignore_result)

    async def close(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception as exc:  # closing a connection that is going anyway
                if not is_transient(exc):
                    raise


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def publish_many(
    channel: aiormq.abc.AbstractChannel, messages: Sequence[Outgoing]
) -> list[asyncio.Future[Any]]:
    """Write ``messages`` in one go on a channel in confirm mode; their confirmations.

    The same frames and bookkeeping as aiormq's ``basic_publish``, for a whole
    batch: one lock, one frame buffer, one write.
    """
    ch: Any = channel
    if ch.is_closed:
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
    frames: list[Any] = []
    confirmations: list[asyncio.Future[Any]] = []
    async with ch.lock:
        for exchange, routing_key, headers, body, message_id in messages:
            ch.delivery_tag += 1
            confirmation = ch.create_future()
            ch.confirmations[ch.delivery_tag] = confirmation
            confirmations.append(confirmation)
            frames.append(spec.Basic.Publish(exchange=exchange, routing_key=routing_key))
            frames.append(
                ContentHeader(
                    properties=spec.Basic.Properties(
                        headers=headers, delivery_mode=2, message_id=message_id
                    ),
                    body_size=len(body),
                )
            )
            frames.extend(ch._split_body(body))
        await ch.write_queue.put(ChannelFrame.marshall(channel_number=ch.number, frames=frames))
    return confirmations
