"""The consumer groups of a channel: what each holds, removing retired ones, forgetting
consumers that have gone away.

A group whose service no longer consumes the channel (removed from the
schemas) never reads again: trimming (``trim_acknowledged``) keeps every
entry it has not read, forever, until the group is removed. A consumer
killed with SIGKILL never leaves its group (each restart joins under a new
``host-pid`` name); once it owns nothing and has been idle long enough,
:meth:`RedisGroups.forget_idle_consumers` removes it.

A sharded channel (:mod:`~toolkit.channels.redis.shards`) has a group on every
shard (and on each shard's priority bands): its groups are listed summed over
the shards, and removed from every one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import redis.asyncio
from redis.commands.core import AsyncScript

from toolkit.channels.redis.entries import id_order, pairs
from toolkit.channels.redis.errors import is_nogroup
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.options import Channels
from toolkit.channels.redis.raw import execute
from toolkit.channels.redis.shards import shard_name

__all__ = ["GroupInfo", "RedisGroups"]

_SCAN_COUNT: Final = 500


class GroupInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer group of a channel, as ``XINFO GROUPS`` and its delay set tell."""

    name: str
    #: consumers known to the group (a killed one stays until forgotten)
    consumers: int
    #: delivered and not yet acknowledged (delayed retries included)
    pending: int
    #: waiting in the delay set for a retry
    delayed: int
    last_delivered_id: str
    #: entries of the stream not yet delivered to the group; None when Redis cannot tell
    #: (after trimming or deletions past the group's position)
    lag: int | None


def _fields(item: Any) -> dict[str, Any]:
    """An XINFO reply item (a flat list or a map, bytes keys) as a str-keyed dict."""
    raw: Mapping[Any, Any] = item if isinstance(item, Mapping) else pairs(item)
    return {_text(k): v for k, v in raw.items()}


def _summed(one: GroupInfo, other: GroupInfo) -> GroupInfo:
    """A group over two streams of its channel (shards, priority bands). Each consumer
    reads every one of them: the larger count, not the sum; the position is the later
    one (entry ids of different streams, ordered by time)."""
    return GroupInfo(
        name=one.name,
        consumers=max(one.consumers, other.consumers),
        pending=one.pending + other.pending,
        delayed=one.delayed + other.delayed,
        last_delivered_id=max(one.last_delivered_id, other.last_delivered_id, key=id_order),
        lag=None if one.lag is None or other.lag is None else one.lag + other.lag,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisGroups:
    """Groups of a channel for :class:`~toolkit.channels.redis.RedisTransport`
    (a base class of it: uses the transport's client and channel settings)."""

    redis: redis.asyncio.Redis
    prefix: str
    _channels: Channels
    _forget_idle: AsyncScript

    async def bands(self, channel: str) -> list[int]:
        """The priority bands ``channel`` (or a shard) has had messages sent to."""
        listed = await execute(self.redis, "SMEMBERS", self._channels.keys(channel).bands)
        return sorted(int(p) for p in listed)

    async def groups(self, channel: str) -> list[GroupInfo]:
        """The channel's groups, by name; empty when its stream does not exist. Summed
        (:func:`_summed`) over its priority bands and, when sharded, over its shards."""
        by_name: dict[str, GroupInfo] = {}
        for i in range(self._channels.options(channel).shards):
            shard = shard_name(channel, i)
            bands = [band_name(shard, p) for p in await self.bands(shard)]
            for stream in (shard, *bands):
                for group in await self.stream_groups(stream):
                    mine = by_name.get(group.name)
                    by_name[group.name] = group if mine is None else _summed(mine, group)
        return sorted(by_name.values(), key=lambda g: g.name)

    async def stream_groups(self, channel: str) -> list[GroupInfo]:
        """The groups of one stream (a channel's, a shard's or a band's), by name."""
        keys = self._channels.keys(channel)
        try:
            reply = await execute(self.redis, "XINFO", "GROUPS", keys.stream)
        except redis.ResponseError as exc:
            if "no such key" in str(exc):
                return []
            raise
        infos = [_fields(item) for item in reply]
        pipe = self.redis.pipeline(transaction=False)
        for info in infos:
            pipe.zcard(keys.delay(_text(info["name"])))
        delayed = await pipe.execute()
        groups = [
            GroupInfo(
                name=_text(info["name"]),
                consumers=int(info["consumers"]),
                pending=int(info["pending"]),
                delayed=int(waiting),
                last_delivered_id=_text(info["last-delivered-id"]),
                lag=None if info.get("lag") is None else int(info["lag"]),
            )
            for info, waiting in zip(infos, delayed, strict=True)
        ]
        return sorted(groups, key=lambda g: g.name)

    async def remove_group(self, channel: str, group: str) -> bool:
        """Destroy ``group`` on ``channel`` (on each of its shards) with its pending list and
        delay set.

        Returns False when there was no such group. Its unacknowledged
        messages are gone for it; trimming no longer waits for it.
        """
        removed = False
        for i in range(self._channels.options(channel).shards):
            removed |= await self._remove_group(shard_name(channel, i), group)
        return removed

    async def _remove_group(self, shard: str, group: str) -> bool:
        """From one shard's stream and its priority bands: one transaction (one slot)."""
        keys = self._channels.keys(shard)
        pipe = self.redis.pipeline(transaction=True)
        pipe.execute_command("XGROUP", "DESTROY", keys.stream, group)
        pipe.delete(keys.delay(group))
        # and on the channel's priority bands (keys.py), where it has a group of its own
        for priority in await self.bands(shard):
            band = self._channels.keys(band_name(shard, priority))
            pipe.execute_command("XGROUP", "DESTROY", band.stream, group)
            pipe.delete(band.delay(group))
        destroyed, *_ = await pipe.execute(raise_on_error=False)
        if isinstance(destroyed, redis.ResponseError):
            if "requires the key to exist" in str(destroyed) or is_nogroup(destroyed):
                return False  # no stream: no group
            raise destroyed
        return bool(destroyed)

    async def forget_idle_consumers(
        self, channel: str, group: str, *, idle: float, keep: str
    ) -> list[str]:
        """Remove the group's consumers that own no pending message and have been idle
        for ``idle`` seconds or more, except ``keep`` (the caller); their names.

        A consumer with pending messages stays: they are reclaimed first
        (XAUTOCLAIM), then it owns nothing. One that is in fact alive joins
        again on its next read.
        """
        removed: Sequence[Any] = await self._forget_idle(
            keys=[self._channels.keys(channel).stream],
            args=[group, keep, max(int(idle * 1000), 0)],
        )
        return [_text(name) for name in removed]

    async def stream_channels(self) -> list[str]:
        """Channels that have a stream under this transport's prefix, by name."""
        # Glob characters of the prefix match themselves only.
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + ":{*}"
        found: set[str] = set()
        # scan_iter: every master's keys on a cluster, the one server's otherwise.
        async for key in self.redis.scan_iter(match=pattern, count=_SCAN_COUNT, _type="stream"):
            name = _text(key)[len(self.prefix) + 2 : -1]
            # ``channel#i``: a shard of a channel, listed as that channel
            name = name.partition("#")[0]
            if name and "{" not in name and "}" not in name:
                found.add(name)
        return sorted(found)
