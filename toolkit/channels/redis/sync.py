"""Sending to Redis Streams without asyncio: the transport of ``SyncDistributedBus``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis
import redis.cluster
from redis.exceptions import MovedError

from toolkit.channels.base import TransportError
from toolkit.channels.redis.connection import (
    check_sync,
    is_cluster,
    resolve_url,
    sync_client,
    sync_cluster_client,
)
from toolkit.channels.redis.errors import is_transient, unavailable
from toolkit.channels.redis.keys import DEFAULT_PREFIX, ChannelKeys, band_name
from toolkit.channels.redis.options import ChannelOptions, Channels
from toolkit.channels.redis.priorities import by_priority
from toolkit.channels.redis.schedule import SyncRedisSchedules
from toolkit.channels.redis.scripts import OPEN_BAND
from toolkit.channels.redis.shards import split
from toolkit.envelope import Envelope

__all__ = ["SyncRedisTransport"]


class SyncRedisTransport(SyncRedisSchedules):
    """Sending only, without asyncio: the transport of ``SyncDistributedBus`` (redis-py sync client)."""

    prioritizes_messages = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | redis.cluster.RedisCluster | None = None,
        prefix: str = DEFAULT_PREFIX,
        options: ChannelOptions | None = None,
        channels: Mapping[str, ChannelOptions] | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self._owns_client = client is None
        self.redis: Any = client
        if client is None:
            self.redis = (
                sync_cluster_client(self.url) if is_cluster(self.url) else sync_client(self.url)
            )
        self.cluster = isinstance(self.redis, redis.cluster.RedisCluster)
        self._channels = Channels(prefix, options, channels)
        self._open_bands: set[tuple[str, int]] = set()
        self._expected: dict[str, tuple[str, ...]] = {}
        self._open_band_script: Any = None

    def check(self) -> None:
        check_sync(self.redis, self.url)

    def keys(self, channel: str) -> ChannelKeys:
        return self._channels.keys(channel)

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        shards = self._channels.options(channel).shards
        if shards > 1:
            for name, part in split(channel, envelopes, shards).items():
                self._send_part(name, part)
            return
        self._send_part(channel, envelopes)

    def _send_part(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Send to one stream (a channel's, or one shard's) or its priority bands, as the
        asyncio transport does (:mod:`~toolkit.channels.redis.priorities`)."""
        if any(e.headers.priority for e in envelopes):
            for priority, part in by_priority(envelopes).items():
                if priority and (channel, priority) not in self._open_bands:
                    self._open_band(channel, priority)
                self._send_stream(band_name(channel, priority), part)
            return
        self._send_stream(channel, envelopes)

    def expect_groups(self, channel: str, groups: Iterable[str]) -> None:
        self._expected[channel] = tuple(groups)

    def _open_band(self, channel: str, priority: int) -> None:
        keys = self._channels.keys(channel)
        if self._open_band_script is None:
            self._open_band_script = self.redis.register_script(OPEN_BAND)
        expected = self._expected.get(channel.partition("#")[0], ())
        try:
            self._open_band_script(
                keys=[keys.stream, keys.band(priority), keys.bands], args=[priority, *expected]
            )
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"opening priority band {priority} of {channel!r}", exc) from exc
            raise
        self._open_bands.add((channel, priority))

    def _send_stream(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        if any(e.headers.deliver_at_ms for e in envelopes):
            return self._send_scheduled(channel, envelopes)
        xadd = self._channels.xadd(channel)
        options = self._channels.options(channel)
        try:
            for attempt in range(3):
                # WAIT must follow the appends on their connection: a durable send goes
                # to the node's own client on a cluster.
                target = self.redis
                if options.durable_replicas and self.cluster:
                    node = self.redis.get_node_from_key(self._channels.keys(channel).stream)
                    target = node.redis_connection
                pipe = target.pipeline(transaction=False)
                for envelope in envelopes:
                    pipe.execute_command(*xadd.envelope(envelope))
                if options.durable_replicas:
                    pipe.execute_command(
                        "WAIT", options.durable_replicas, options.durable_timeout_ms
                    )
                try:
                    replies = pipe.execute()
                except MovedError:
                    if attempt == 2 or not self.cluster:
                        raise
                    self.redis.nodes_manager.initialize()
                    continue
                if options.durable_replicas and int(replies[-1]) < options.durable_replicas:
                    raise TransportError(
                        f"sent to {channel!r}, but not confirmed by "
                        f"{options.durable_replicas} replica(s) (got {int(replies[-1])}): "
                        "a failover now could lose it"
                    )
                return
        except TransportError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"sending to {channel!r}", exc) from exc
            raise

    def close(self) -> None:
        if self._owns_client:
            self.redis.close()
