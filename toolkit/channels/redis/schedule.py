"""Scheduled messages on Redis: a sorted set per channel, moved into the stream when due.

A scheduled message waits in two keys of its channel (``keys.py``): the
sorted set ``:scheduled`` (message id scored by due time, Unix ms) and the
hash ``:scheduled:entries`` (message id -> the entry's wire fields as
netstrings, ``<length>:<bytes>`` one after another, so a Lua script can
read them back without a decoder). The scripts compare due times with the
server's clock (``TIME``), so publishers' and consumers' clocks do not
matter, and move what is due into the stream atomically: a message is
either waiting or in the stream, never both or neither, whoever moves it
and whatever crashes. Every consumer moves what is due before it reads
(:class:`ScheduledRelease`) and wakes for the next due time; a scheduling
publisher moves what is due on its channel as it sends. Both keys are on the
server, so a scheduled message outlives consumers and (with persistence) a
restart of Redis. On a sharded channel (:mod:`~toolkit.channels.redis.shards`)
each shard has its own two keys, and so has each priority band
(:mod:`~toolkit.channels.redis.priorities`): a scheduled message waits on the
stream it would go to without a delay, and joins it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import redis
import redis.asyncio

from toolkit.channels.base import ScheduledMessage
from toolkit.channels.redis.errors import is_transient, unavailable
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.options import Channels
from toolkit.channels.redis.shards import shard_name
from toolkit.envelope import Envelope

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript, Script

__all__ = [
    "CANCEL",
    "RELEASE",
    "SCHEDULE",
    "RedisSchedules",
    "ScheduledRelease",
    "SyncRedisSchedules",
    "netstrings",
    "parse_netstrings",
]

#: how often a consumer looks for scheduled messages at the latest (seconds): a
#: message scheduled by another client for sooner than the next known due time
#: is moved at most this late
POLL: Final = 0.5
#: scheduled messages moved per script call (the call repeats while there are more)
BATCH: Final = 500

_SERVER_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_MOVE = """
local function netstrings(blob)
  local out, i = {}, 1
  while i <= #blob do
    local colon = string.find(blob, ':', i, true)
    local n = tonumber(string.sub(blob, i, colon - 1))
    out[#out + 1] = string.sub(blob, colon + 1, colon + n)
    i = colon + 1 + n
  end
  return out
end
local ntrim = tonumber(ARGV[1])
local function xadd(fields)
  local args = {KEYS[1]}
  for j = 2, 1 + ntrim do args[#args + 1] = ARGV[j] end
  args[#args + 1] = '*'
  for _, v in ipairs(fields) do args[#args + 1] = v end
  return redis.call('XADD', unpack(args))
end
local function release(limit)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local blob = redis.call('HGET', KEYS[3], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    if blob then xadd(netstrings(blob)) end
  end
  return #ids
end
local function wait()
  local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if nxt[2] then return math.max(tonumber(nxt[2]) - now, 0) end
  return -1
end
"""

# KEYS: stream, scheduled set, entries hash. ARGV: trim count, trim arguments,
# the most to move. Moves what is due; returns {moved, ms until the next is due or -1}.
RELEASE: Final = (
    _SERVER_MS
    + _MOVE
    + """
local moved = release(tonumber(ARGV[2 + ntrim]))
return {moved, wait()}
"""
)

# KEYS as RELEASE. ARGV: trim count, trim arguments, then per message its due
# time (Unix ms, 0 for at once), message id and fields (netstrings). Due ones
# join the stream in order (after what fell due already), the others wait.
SCHEDULE: Final = (
    _SERVER_MS
    + _MOVE
    + """
release(10000)
local i = 2 + ntrim
local held = 0
while i <= #ARGV do
  local due = tonumber(ARGV[i])
  if due > now then
    redis.call('ZADD', KEYS[2], due, ARGV[i + 1])
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
    held = held + 1
  else
    xadd(netstrings(ARGV[i + 2]))
  end
  i = i + 3
end
return held
"""
)

# KEYS: scheduled set, entries hash. ARGV: message ids. Returns how many waited.
CANCEL: Final = """
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then n = n + 1 end
  redis.call('HDEL', KEYS[2], id)
end
return n
"""


def netstrings(envelope: Envelope) -> bytes:
    """The envelope's wire fields, each name and value as ``<length>:<bytes>``."""
    parts: list[bytes] = []
    for name, value in envelope.to_fields().items():
        for item in (name.encode(), value if isinstance(value, bytes) else value.encode()):
            parts.append(b"%d:%s" % (len(item), item))
    return b"".join(parts)


def parse_netstrings(blob: bytes) -> dict[bytes, bytes]:
    items: list[bytes] = []
    i = 0
    while i < len(blob):
        colon = blob.index(b":", i)
        n = int(blob[i:colon])
        items.append(blob[colon + 1 : colon + 1 + n])
        i = colon + 1 + n
    it = iter(items)
    return dict(zip(it, it, strict=False))


def schedule_args(trim: Sequence[bytes], envelopes: Sequence[Envelope]) -> list[Any]:
    args: list[Any] = [len(trim), *trim]
    for envelope in envelopes:
        args += (envelope.headers.deliver_at_ms, envelope.headers.message_id, netstrings(envelope))
    return args


def _keys(channels: Channels, channel: str) -> list[str]:
    keys = channels.keys(channel)
    return [keys.stream, keys.scheduled, keys.scheduled_entries]


class RedisSchedules:
    """Implements Schedules for :class:`~toolkit.channels.redis.RedisTransport` (a base
    class of it: uses the transport's client and channel settings)."""

    redis: redis.asyncio.Redis
    _channels: Channels
    schedules_messages = True

    if TYPE_CHECKING:

        async def bands(self, channel: str) -> list[int]: ...

    def _script(self, name: str, text: str) -> AsyncScript:
        script: AsyncScript | None = self.__dict__.get(name)
        if script is None:
            script = self.__dict__[name] = self.redis.register_script(text)
        return script

    async def _send_scheduled(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Send a batch holding scheduled messages, in order, through SCHEDULE."""
        trim = self._channels.xadd(channel).trim_args()
        script = self._script("_schedule_script", SCHEDULE)
        try:
            await script(keys=_keys(self._channels, channel), args=schedule_args(trim, envelopes))
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"scheduling on {channel!r}", exc) from exc
            raise

    async def release_scheduled(self, channel: str, limit: int = BATCH) -> tuple[int, int]:
        """Move what is due on ``channel``; (moved, ms until the next is due or -1)."""
        trim = self._channels.xadd(channel).trim_args()
        script = self._script("_release_script", RELEASE)
        moved, wait = await script(
            keys=_keys(self._channels, channel), args=[len(trim), *trim, limit]
        )
        return int(moved), int(wait)

    async def _streams(self, channel: str) -> list[str]:
        """The streams of ``channel``, each shard's and priority band's: a scheduled
        message waits on the one it goes to."""
        names = []
        for i in range(self._channels.options(channel).shards):
            shard = shard_name(channel, i)
            names += [shard, *(band_name(shard, p) for p in await self.bands(shard))]
        return names

    async def scheduled(self, channel: str, *, count: int | None = None) -> list[ScheduledMessage]:
        found: list[ScheduledMessage] = []
        for shard in await self._streams(channel):
            found += await self._scheduled(channel, shard, count)
        found.sort(key=lambda m: m.deliver_at_ms)
        return found if count is None else found[:count]

    async def _scheduled(
        self, channel: str, shard: str, count: int | None
    ) -> list[ScheduledMessage]:
        while (await self.release_scheduled(shard))[0] >= BATCH:
            pass  # what is due is no longer waiting
        keys = self._channels.keys(shard)
        end = -1 if count is None else count - 1
        waiting: list[Any] = await self.redis.zrange(keys.scheduled, 0, end, withscores=True)
        if not waiting:
            return []
        blobs: list[Any] = await self.redis.hmget(keys.scheduled_entries, [m for m, _ in waiting])
        found = []
        for (member, score), blob in zip(waiting, blobs, strict=True):
            envelope = None
            if blob is not None:
                try:
                    envelope = Envelope.from_fields(parse_netstrings(blob))
                except Exception:  # listed as not an envelope, still cancellable
                    envelope = None
            message_id = member.decode() if isinstance(member, bytes) else str(member)
            found.append(ScheduledMessage(channel, message_id, int(score), envelope))
        return found

    async def cancel_scheduled(self, channel: str, message_ids: Sequence[str]) -> int:
        if not message_ids:
            return 0
        script = self._script("_cancel_script", CANCEL)
        ids = list(dict.fromkeys(message_ids))
        done = 0
        for shard in await self._streams(channel):
            await self.release_scheduled(shard)  # what fell due is delivered, not cancelled
            done += int(await script(keys=_keys(self._channels, shard)[1:], args=ids))
        return done


class SyncRedisSchedules:
    """Scheduling sends of :class:`~toolkit.channels.redis.SyncRedisTransport`."""

    redis: redis.Redis
    _channels: Channels
    schedules_messages = True

    def _send_scheduled(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        script: Script | None = self.__dict__.get("_schedule_script")
        if script is None:
            script = self.__dict__["_schedule_script"] = self.redis.register_script(SCHEDULE)
        trim = self._channels.xadd(channel).trim_args()
        try:
            script(keys=_keys(self._channels, channel), args=schedule_args(trim, envelopes))
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"scheduling on {channel!r}", exc) from exc
            raise


class ScheduledRelease:
    """A consumer's side: move what fell due before reading, and know when to look again."""

    __slots__ = ("_channel", "_transport", "next_check")

    def __init__(self, transport: RedisSchedules, channel: str) -> None:
        self._transport = transport
        self._channel = channel
        #: monotonic time of the next look (the first at once)
        self.next_check = 0.0

    async def release(self) -> None:
        while True:
            moved, wait_ms = await self._transport.release_scheduled(self._channel)
            if moved < BATCH:
                break
        wait = wait_ms / 1000
        self.next_check = time.monotonic() + (POLL if wait < 0 else min(wait, POLL))
