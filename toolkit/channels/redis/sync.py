"""Sending to Redis Streams without asyncio: the transport of ``SyncDistributedBus``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis

from toolkit.channels.redis.connection import check_sync, resolve_url, sync_client
from toolkit.channels.redis.errors import is_transient, unavailable
from toolkit.channels.redis.keys import DEFAULT_PREFIX, ChannelKeys
from toolkit.channels.redis.options import ChannelOptions, Channels
from toolkit.channels.redis.schedule import SyncRedisSchedules
from toolkit.envelope import Envelope

__all__ = ["SyncRedisTransport"]


class SyncRedisTransport(SyncRedisSchedules):
    """Sending only, without asyncio: the transport of ``SyncDistributedBus`` (redis-py sync client)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        options: ChannelOptions | None = None,
        channels: Mapping[str, ChannelOptions] | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self._owns_client = client is None
        self.redis = client if client is not None else sync_client(self.url)
        self._channels = Channels(prefix, options, channels)

    def check(self) -> None:
        check_sync(self.redis, self.url)

    def keys(self, channel: str) -> ChannelKeys:
        return self._channels.keys(channel)

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        if any(e.headers.deliver_at_ms for e in envelopes):
            return self._send_scheduled(channel, envelopes)
        xadd = self._channels.xadd(channel)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for envelope in envelopes:
                pipe.execute_command(*xadd.envelope(envelope))  # type: ignore[no-untyped-call]
            pipe.execute()
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"sending to {channel!r}", exc) from exc
            raise

    def close(self) -> None:
        if self._owns_client:
            self.redis.close()
