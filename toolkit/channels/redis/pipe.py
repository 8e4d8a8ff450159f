"""Opening a Redis Streams pipe from its URL (``redis://``, ``rediss://``, ``unix://``,
``redis+cluster://``, ``rediss+cluster://``)."""

from __future__ import annotations

import msgspec

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.redis.options import ChannelOptions
from toolkit.channels.redis.sync import SyncRedisTransport
from toolkit.channels.redis.transport import RedisTransport
from toolkit.pipe_settings import BindingError, PipeSettings, redact, url_options

__all__ = ["open_sync_transport", "open_transport"]


def open_transport(url: str, settings: PipeSettings) -> RedisTransport:
    base, shards = _options(url, settings)
    return RedisTransport(url, prefix=settings.prefix, options=base, channels=shards)


def open_sync_transport(url: str, settings: PipeSettings) -> SyncRedisTransport:
    base, shards = _options(url, settings)
    return SyncRedisTransport(url, prefix=settings.prefix, options=base, channels=shards)


def _options(url: str, settings: PipeSettings) -> tuple[ChannelOptions, dict[str, ChannelOptions]]:
    """The channels' options: the settings', the URL's ``durable`` and ``shards`` over them."""
    query = url_options(url)
    durable = settings.durable_replicas
    if "durable" in query:
        durable = _number(url, "durable", query["durable"])
    base = _base(settings, durable)
    shards = dict(settings.shards)
    for item in filter(None, query.get("shards", "").split(",")):
        channel, colon, count = item.partition(":")
        if not colon or not channel:
            raise BindingError(
                f"pipe URL {redact(url)!r}: shards must read channel:N[,channel:N...], not {item!r}"
            )
        shards[channel] = _number(url, "shards", count)
    return base, {channel: msgspec.structs.replace(base, shards=n) for channel, n in shards.items()}


def _number(url: str, name: str, text: str) -> int:
    if not text.isdigit():
        raise BindingError(f"pipe URL {redact(url)!r}: {name} must be a whole number, not {text!r}")
    return int(text)


def _base(settings: PipeSettings, durable: int) -> ChannelOptions:
    return ChannelOptions(
        visibility_timeout=settings.visibility_timeout,
        max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES,
        idle_consumer_timeout=settings.idle_consumer_timeout,
        trim_acknowledged=settings.trim_acknowledged,
        trim_interval=settings.trim_interval,
        durable_replicas=durable,
        durable_timeout_ms=settings.durable_timeout_ms,
    )
