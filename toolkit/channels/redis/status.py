"""What a channel holds on Redis right now (:class:`~toolkit.channels.base.ReportsStatus`).

Two round trips whatever the backlog: the server's clock, the stream's and
the dead-letter stream's lengths and ``XINFO GROUPS`` first, then per group
its ``XPENDING`` summary (count and oldest id), ``XINFO CONSUMERS`` (idle
times) and its delay set. Nothing scans the entries. A channel's priority
bands (:mod:`~toolkit.channels.redis.priorities`) are added in, group by
group: two round trips more per band; so are the shards of a sharded channel
(:mod:`~toolkit.channels.redis.shards`), each with its bands and dead letters.
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis
import redis.asyncio

from toolkit.channels.redis.errors import is_transient, unavailable
from toolkit.channels.redis.groups import RedisGroups, _fields, _text
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.options import Channels
from toolkit.channels.redis.shards import shard_name
from toolkit.channels.status import ChannelStatus, ConsumerStatus, GroupStatus

__all__ = ["RedisStatus"]


class RedisStatus:
    """``status`` for :class:`~toolkit.channels.redis.RedisTransport` (a base class of it)."""

    redis: redis.asyncio.Redis
    _channels: Channels

    async def status(self, channel: str) -> ChannelStatus:
        options = self._channels.options(channel)
        try:
            found = await self._shard_status(channel, options.visibility_timeout)
            for i in range(1, options.shards):
                found = _merged(found, await self._shard_status(shard_name(channel, i), 0))
            return found
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise unavailable("reading the channel's status", exc) from exc
        except redis.ResponseError as exc:
            if is_transient(exc):
                raise unavailable("reading the channel's status", exc) from exc
            raise

    async def _shard_status(self, shard: str, visibility: float) -> ChannelStatus:
        """One stream of a channel (a shard's, or the channel's own) with its bands."""
        assert isinstance(self, RedisGroups)
        keys = self._channels.keys(shard)
        found = await self._status(shard, keys.stream, keys.dead, visibility)
        for priority in await self.bands(shard):
            band = band_name(shard, priority)
            # A band's dead letters are its shard's: counted once.
            found = _merged(found, await self._status(band, keys.band(priority), None, 0))
        return found

    async def _status(
        self, channel: str, stream: str, dead: str | None, visibility: float
    ) -> ChannelStatus:
        """One stream's; ``dead``: the dead-letter stream counted with it, if any."""
        assert isinstance(self, RedisGroups)
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("TIME")
        pipe.xlen(stream)
        if dead is not None:
            pipe.xlen(dead)
        now, length, *dead_count = await pipe.execute()
        dead_letters = dead_count[0] if dead_count else 0
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        groups = await self.stream_groups(channel)
        if not groups:
            return ChannelStatus(
                channel=channel,
                length=int(length),
                dead_letters=int(dead_letters),
                visibility_timeout=visibility,
            )
        pipe = self.redis.pipeline(transaction=False)
        for group in groups:
            pipe.execute_command("XPENDING", stream, group.name)
            pipe.execute_command("XINFO", "CONSUMERS", stream, group.name)
        replies: list[Any] = await pipe.execute()
        found = []
        for i, group in enumerate(groups):
            summary, consumers = replies[2 * i], replies[2 * i + 1]
            oldest = None
            if int(summary[0]) and summary[1] is not None:
                stored_ms = int(_text(summary[1]).partition("-")[0])
                oldest = max(now_ms - stored_ms, 0) / 1000
            found.append(
                GroupStatus(
                    name=group.name,
                    lag=group.lag,
                    pending=group.pending,
                    retrying=group.delayed,
                    oldest_pending_age=oldest,
                    consumers=sorted(
                        (_consumer(_fields(c)) for c in consumers), key=lambda c: c.name
                    ),
                )
            )
        return ChannelStatus(
            channel=channel,
            length=int(length),
            dead_letters=int(dead_letters),
            groups=found,
            visibility_timeout=visibility,
        )


def _consumer(info: dict[str, Any]) -> ConsumerStatus:
    # Redis 7.2+ tells "inactive" (since the last successful read) beside "idle" (since
    # the last attempt); a consumer blocked on an empty stream keeps attempting.
    idle = info.get("idle")
    return ConsumerStatus(
        name=_text(info["name"]),
        pending=int(info["pending"]),
        idle=None if idle is None else int(idle) / 1000,
    )


def _merged(status: ChannelStatus, band: ChannelStatus) -> ChannelStatus:
    """``status`` with another stream of its channel's (a priority band, a shard) added in:
    entries and dead letters, and group by group lag, pending and consumers (by name: a
    consumer reads every stream of its channel)."""
    by_name = {g.name: g for g in band.groups}
    groups = []
    for group in status.groups:
        other = by_name.pop(group.name, None)
        if other is None:
            groups.append(group)
            continue
        ages = [a for a in (group.oldest_pending_age, other.oldest_pending_age) if a is not None]
        consumers = {c.name: c for c in group.consumers}
        for c in other.consumers:
            mine = consumers.get(c.name)
            if mine is None:
                consumers[c.name] = c
                continue
            idles = [i for i in (mine.idle, c.idle) if i is not None]
            consumers[c.name] = ConsumerStatus(
                name=c.name, pending=mine.pending + c.pending, idle=min(idles) if idles else None
            )
        groups.append(
            GroupStatus(
                name=group.name,
                lag=None if group.lag is None or other.lag is None else group.lag + other.lag,
                pending=group.pending + other.pending,
                retrying=group.retrying + other.retrying,
                oldest_pending_age=max(ages) if ages else None,
                consumers=sorted(consumers.values(), key=lambda c: c.name),
            )
        )
    groups += by_name.values()
    return msgspec.structs.replace(
        status,
        length=status.length + band.length,
        dead_letters=status.dead_letters + band.dead_letters,
        groups=sorted(groups, key=lambda g: g.name),
    )
