"""Per-channel settings of the Redis transport, and what they make of each XADD.

:class:`ChannelOptions` is the public settings object; :class:`Channels`
holds the key names and options of every channel a transport touches, and
:class:`Xadd` the XADD arguments they imply (lossy trimming), built once per
channel and shared by the async and sync transports.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.redis.keys import ChannelKeys, validate_name
from toolkit.envelope import Envelope

__all__ = ["MAX_SHARDS", "ChannelOptions", "Channels", "Xadd"]

#: most streams a channel is split into
MAX_SHARDS: Final = 1024


class ChannelOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Per-channel settings of the Redis transport.

    Trimming: by default the stream is never trimmed. ``trim_acknowledged``
    trims, at most every ``trim_interval`` seconds (done by consumers after
    acknowledging), only entries that every existing group has acknowledged:
    it never drops a message a group still has to handle. The ``lossy_*``
    options cap the stream at every ``XADD`` whatever the groups have read:
    **they can drop messages nobody has handled yet**.
    """

    #: seconds a delivered, unacknowledged entry may stay idle before another
    #: consumer of the group reclaims it; its consumer renews it every third of
    #: that while handling it (see RenewsLeases)
    visibility_timeout: float = 30.0
    #: seconds between reclaim checks; None = min(visibility_timeout / 4, 1s)
    reclaim_interval: float | None = None
    trim_acknowledged: bool = False
    trim_interval: float = 10.0
    #: XADD MAXLEN ~ n: LOSSY, may drop unacknowledged messages
    lossy_max_length: int | None = None
    #: XADD MINID ~ (now - age): LOSSY, may drop unacknowledged messages
    lossy_max_age: float | None = None
    #: larger bodies are dead-lettered unread
    max_message_bytes: int = MAX_MESSAGE_BYTES
    #: consumers of a group that own nothing and have been idle this many seconds
    #: are removed from it (ones killed with SIGKILL never leave); None = never
    idle_consumer_timeout: float | None = 3600.0
    #: a send returns once this many replicas hold it too (``WAIT`` after the append;
    #: fails with TransportError when fewer confirm in ``durable_timeout_ms``). 0: once
    #: the master holds it: a failover before it reached a replica loses it
    durable_replicas: int = 0
    durable_timeout_ms: int = 1000
    #: streams the channel is split into (see :mod:`toolkit.channels.redis.shards`);
    #: on a Redis Cluster they spread over the masters
    shards: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"shards must be between 1 and {MAX_SHARDS}")
        if self.durable_replicas < 0 or self.durable_timeout_ms < 0:
            raise ValueError("durable_replicas and durable_timeout_ms must not be negative")
        if self.visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if self.lossy_max_length is not None and self.lossy_max_length < 1:
            raise ValueError("lossy_max_length must be at least 1")
        if self.idle_consumer_timeout is not None and self.idle_consumer_timeout <= 0:
            raise ValueError("idle_consumer_timeout must be positive (None: never)")

    @property
    def reclaim_every(self) -> float:
        if self.reclaim_interval is not None:
            return max(self.reclaim_interval, 0.01)
        return max(min(self.visibility_timeout / 4, 1.0), 0.01)

    @property
    def idle_check_every(self) -> float | None:
        """Seconds between a consumer's looks for idle consumers of its group."""
        if self.idle_consumer_timeout is None:
            return None
        return min(self.idle_consumer_timeout, 60.0)


class Xadd:
    """Builds XADD argument lists for one channel (trimming options included)."""

    __slots__ = ("_head", "_max_age_ms", "_stream")

    def __init__(self, keys: ChannelKeys, options: ChannelOptions) -> None:
        self._stream = keys.stream
        head: list[Any] = ["XADD", keys.stream]
        if options.lossy_max_length is not None:
            head += ["MAXLEN", "~", options.lossy_max_length]
        self._head = head
        self._max_age_ms = (
            None if options.lossy_max_age is None else int(options.lossy_max_age * 1000)
        )

    def head(self) -> list[Any]:
        if self._max_age_ms is None:
            return [*self._head, "*"]
        floor = int(time.time() * 1000) - self._max_age_ms
        return [*self._head, "MINID", "~", floor, "*"]

    def trim_args(self) -> list[bytes]:
        """XADD's trimming arguments (before ``*``), as the append script takes them."""
        head = self.head()[2:-1]
        return [str(a).encode() for a in head]

    def envelope(self, envelope: Envelope) -> list[Any]:
        args = self.head()
        for k, v in envelope.to_fields().items():
            args.append(k)
            args.append(v)
        return args


class Channels:
    """Key names and options per channel, shared by the async and sync transports."""

    def __init__(
        self,
        prefix: str,
        options: ChannelOptions | None,
        channels: Mapping[str, ChannelOptions] | None,
    ) -> None:
        self.prefix = validate_name("key prefix", prefix)
        self.default = options or ChannelOptions()
        self.per_channel = dict(channels or {})
        self._keys: dict[str, ChannelKeys] = {}
        self._xadd: dict[str, Xadd] = {}

    def options(self, channel: str) -> ChannelOptions:
        found = self.per_channel.get(channel)
        if found is not None:
            return found
        if "!" in channel:
            # A priority band (``channel!p``): its channel's (or shard's) options.
            own = self.options(channel.partition("!")[0])
            found = self.per_channel[channel] = msgspec.structs.replace(own, shards=1)
            return found
        if "#" in channel:
            # A shard (``channel#i``): its channel's options, as one stream.
            found = msgspec.structs.replace(self.options(channel.partition("#")[0]), shards=1)
            self.per_channel[channel] = found
            return found
        return self.default

    def keys(self, channel: str) -> ChannelKeys:
        keys = self._keys.get(channel)
        if keys is None:
            keys = self._keys[channel] = ChannelKeys(channel, self.prefix)
        return keys

    def xadd(self, channel: str) -> Xadd:
        builder = self._xadd.get(channel)
        if builder is None:
            builder = self._xadd[channel] = Xadd(self.keys(channel), self.options(channel))
        return builder
