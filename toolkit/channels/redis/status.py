"""What a channel holds on Redis right now (:class:`~toolkit.channels.base.ReportsStatus`).

Two round trips whatever the backlog: the server's clock, the stream's and
the dead-letter stream's lengths and ``XINFO GROUPS`` first, then per group
its ``XPENDING`` summary (count and oldest id), ``XINFO CONSUMERS`` (idle
times) and its delay set. Nothing scans the entries. A channel's priority
bands (:mod:`~toolkit.channels.redis.priorities`) are added in, group by
group: two round trips more per band.
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
from toolkit.channels.status import ChannelStatus, ConsumerStatus, GroupStatus

__all__ = ["RedisStatus"]


class RedisStatus:
    """``status`` for :class:`~toolkit.channels.redis.RedisTransport` (a base class of it)."""

    redis: redis.asyncio.Redis
    _channels: Channels

    async def status(self, channel: str) -> ChannelStatus:
        keys = self._channels.keys(channel)
        visibility = self._channels.options(channel).visibility_timeout
        try:
            found = await self._status(channel, keys.stream, keys.dead, visibility)
            assert isinstance(self, RedisGroups)
            for priority in await self.bands(channel):
                band = band_name(channel, priority)
                # A band's dead letters are the channel's: counted once.
                found = _merged(found, await self._status(band, keys.band(priority), "", 0))
            return found
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise unavailable("reading the channel's status", exc) from exc
        except redis.ResponseError as exc:
            if is_transient(exc):
                raise unavailable("reading the channel's status", exc) from exc
            raise

    async def _status(
        self, channel: str, stream: str, dead: str, visibility: float
    ) -> ChannelStatus:
        assert isinstance(self, RedisGroups)
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("TIME")
        pipe.xlen(stream)
        pipe.xlen(dead or stream)
        now, length, dead_letters = await pipe.execute()
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        groups = await self.groups(channel)
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
    """``status`` with a priority band's entries, lag and pending added, group by group."""
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
        status, length=status.length + band.length, groups=sorted(groups, key=lambda g: g.name)
    )
