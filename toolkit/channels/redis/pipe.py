"""Opening a Redis Streams pipe from its URL (``redis://``, ``rediss://``, ``unix://``)."""

from __future__ import annotations

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.redis.options import ChannelOptions
from toolkit.channels.redis.sync import SyncRedisTransport
from toolkit.channels.redis.transport import RedisTransport
from toolkit.pipe_settings import PipeSettings

__all__ = ["open_sync_transport", "open_transport"]


def open_transport(url: str, settings: PipeSettings) -> RedisTransport:
    return RedisTransport(url, prefix=settings.prefix, options=_options(settings))


def open_sync_transport(url: str, settings: PipeSettings) -> SyncRedisTransport:
    return SyncRedisTransport(url, prefix=settings.prefix, options=_options(settings))


def _options(settings: PipeSettings) -> ChannelOptions:
    return ChannelOptions(
        visibility_timeout=settings.visibility_timeout,
        max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES,
        idle_consumer_timeout=settings.idle_consumer_timeout,
        trim_acknowledged=settings.trim_acknowledged,
        trim_interval=settings.trim_interval,
    )
