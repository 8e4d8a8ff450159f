"""What a channel holds on Redis right now (:class:`~toolkit.channels.base.ReportsStatus`).

Two round trips whatever the backlog: the server's clock, the stream's and
the dead-letter stream's lengths and ``XINFO GROUPS`` first, then per group
its ``XPENDING`` summary (count and oldest id), ``XINFO CONSUMERS`` (idle
times) and its delay set. Nothing scans the entries.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from toolkit.channels.redis.errors import is_transient, unavailable
from toolkit.channels.redis.groups import RedisGroups, _fields, _text
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
            return await self._status(channel, keys.stream, keys.dead, visibility)
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
        pipe.xlen(dead)
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
