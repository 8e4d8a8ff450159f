"""Redis Streams channels: the production transport.

A channel is one stream (key layout in :mod:`toolkit.channels.redis_keys`);
each consuming service is a consumer group on it, created at the start of the
stream (``XGROUP CREATE ... 0 MKSTREAM``) so nothing sent before its first
consumer started is missed. Entries are the flat envelope of
``docs/wire-format.md``, readable in ``redis-cli``.

* ``send``: pipelined ``XADD`` (one round trip per batch).
* ``receive``: ``XREADGROUP COUNT n BLOCK t``; interleaved with it, at most
  every ``reclaim_interval``, one script moves due retries back to this
  consumer and reclaims entries idle in the group's pending list for longer
  than the visibility timeout (``XAUTOCLAIM``). The block time is cut to the
  next of those checks, so there is no busy loop and no starved reclaim.
* ``ack``: one ``XACK`` per batch.
* ``retry_later``: the entry stays pending (a crash cannot lose it); its id
  goes into the group's delay set scored by its due time (server clock). It is
  claimed back, delivery count + 1, once due.
* ``reject``: ``MULTI`` / ``XADD`` to the dead-letter stream / ``XACK`` /
  ``EXEC``: dead-lettered and acknowledged together.

See ``docs/redis.md`` for guarantees, sizing and recovery behaviour.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec
import redis
import redis.asyncio
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

from toolkit.channels.base import DeadLetter, Delivery, TransportError
from toolkit.channels.redis_keys import DEFAULT_PREFIX, ChannelKeys, validate_name
from toolkit.envelope import Envelope, Headers, WireError
from toolkit.redis_url import async_client, check_async, check_sync, resolve_url, sync_client
from toolkit.wire import COMMAND, EVENT, JSON, WIRE_FIELDS

__all__ = [
    "ChannelOptions",
    "RedisSubscription",
    "RedisTransport",
    "SyncRedisTransport",
]

log = logging.getLogger("toolkit.redis")

#: the field a replayed dead letter carries: only this group handles it again
F_REPLAY_GROUP: Final = "replay_group"
#: dead-letter entries: the original fields, then these (names reserved)
DLQ_PREFIX: Final = "dlq_"

# XREADGROUP BLOCK never exceeds this (it must stay under the socket timeout).
_MAX_BLOCK: Final = 5.0
_DELETE_BATCH: Final = 500


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
    #: consumer of the group reclaims it; must exceed the longest batch handling time
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
    max_message_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if self.lossy_max_length is not None and self.lossy_max_length < 1:
            raise ValueError("lossy_max_length must be at least 1")

    @property
    def reclaim_every(self) -> float:
        if self.reclaim_interval is not None:
            return max(self.reclaim_interval, 0.01)
        return max(min(self.visibility_timeout / 4, 1.0), 0.01)


# -- scripts -------------------------------------------------------------------------

_SERVER_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Due retries first, then entries idle past the visibility timeout. Delayed
# entries are pending too; XAUTOCLAIM ... JUSTID moves them without counting a
# delivery, and they are left alone until due.
_TICK: Final = (
    _SERVER_MS
    + """
local stream, delay, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local limit = tonumber(ARGV[3])
local out = {}
local function take(id)
  local claimed = redis.call('XCLAIM', stream, group, consumer, 0, id)
  local entry = claimed[1]
  if entry and entry[2] then
    local info = redis.call('XPENDING', stream, group, id, id, 1)
    out[#out + 1] = {entry[1], entry[2], info[1][4]}
  end
end
local due = redis.call('ZRANGEBYSCORE', delay, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', delay, id)
  take(id)
end
local cursor = ARGV[5]
if #out < limit then
  local r = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[4], cursor,
                      'COUNT', limit - #out, 'JUSTID')
  cursor = r[1]
  for _, id in ipairs(r[2]) do
    if not redis.call('ZSCORE', delay, id) then take(id) end
  end
end
local nxt = redis.call('ZRANGE', delay, 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then wait = math.max(tonumber(nxt[2]) - now, 0) end
return {cursor, out, wait}
"""
)

_RETRY_LATER: Final = (
    _SERVER_MS
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return now
"""
)

# Trim below the oldest entry some group still needs: its oldest pending
# entry, else the one after the last it was delivered.
_TRIM_ACKED: Final = """
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local floor_ms, floor_seq
for _, g in ipairs(groups) do
  local name, pending, last
  for i = 1, #g, 2 do
    local k = g[i]
    if k == 'name' then name = g[i + 1]
    elseif k == 'pending' then pending = g[i + 1]
    elseif k == 'last-delivered-id' then last = g[i + 1] end
  end
  local id = last
  local bump = 1
  if pending > 0 then
    id = redis.call('XPENDING', KEYS[1], name, '-', '+', 1)[1][1]
    bump = 0
  end
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq) + bump
  if floor_ms == nil or ms < floor_ms or (ms == floor_ms and seq < floor_seq) then
    floor_ms, floor_seq = ms, seq
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d-%d', floor_ms, floor_seq))
"""

# Appends a batch to one stream with one command and one reply (redis-py
# packs and parses pipelined commands one by one in Python, which costs more
# than everything else a publisher does). ARGV: the number of trim arguments,
# those arguments, then per entry its field count followed by its fields.
# All entries are appended or, on an error, none after the failing one.
_APPEND: Final = """
local key = KEYS[1]
local ntrim = tonumber(ARGV[1])
local i = 2 + ntrim
local n = 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  if ntrim == 0 then
    redis.call('XADD', key, '*', unpack(ARGV, i + 1, i + count))
  else
    -- unpack() expands fully only as the last argument of a call
    local args = {key}
    for j = 2, 1 + ntrim do args[#args + 1] = ARGV[j] end
    args[#args + 1] = '*'
    for j = i + 1, i + count do args[#args + 1] = ARGV[j] end
    redis.call('XADD', unpack(args))
  end
  i = i + count + 1
  n = n + 1
end
return n
"""

# A consumer that leaves with nothing pending is forgotten; one with pending
# (or delayed) entries stays so that they are reclaimed, not dropped.
_LEAVE: Final = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""

# Commands whose replies we parse ourselves (redis-py's callbacks build
# dicts per entry, which costs more than the rest of the hot path).
_RAW_COMMANDS: Final = ("XREADGROUP", "XRANGE", "XREVRANGE", "XPENDING", "XINFO GROUPS", "XADD")


def _raw(response: Any, **options: Any) -> Any:
    return response


async def _exec(client: redis.asyncio.Redis, *args: Any) -> Any:
    """One command, reply as parsed by hiredis (redis-py leaves execute_command untyped)."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


# -- wire parsing --------------------------------------------------------------------

_META: Final = msgspec.json.Decoder(dict[str, str])
_B_MESSAGE_ID: Final = b"message_id"
_B_ROUTING_KEY: Final = b"routing_key"
_B_KIND: Final = b"kind"
_B_SOURCE: Final = b"source_service"
_B_TARGET: Final = b"target_service"
_B_TIMESTAMP: Final = b"timestamp"
_B_CONTENT_TYPE: Final = b"content_type"
_B_CORRELATION: Final = b"correlation_id"
_B_CAUSATION: Final = b"causation_id"
_B_METADATA: Final = b"metadata"
_B_BODY: Final = b"body"
_B_REPLAY_GROUP: Final = F_REPLAY_GROUP.encode()


def parse_entry(fields: dict[bytes, bytes]) -> Envelope:
    """The envelope of a stream entry; raises :class:`WireError` like ``Envelope.from_fields``.

    A fast path for well-formed entries (what every publisher writes); anything
    unusual goes through ``Envelope.from_fields`` so errors read the same.
    """
    get = fields.get
    message_id = get(_B_MESSAGE_ID)
    routing_key = get(_B_ROUTING_KEY)
    raw_kind = get(_B_KIND)
    source = get(_B_SOURCE)
    body = get(_B_BODY)
    if not (message_id and routing_key and raw_kind and source) or body is None:
        return Envelope.from_fields(fields)
    target = get(_B_TARGET)
    timestamp = get(_B_TIMESTAMP)
    content_type = get(_B_CONTENT_TYPE)
    correlation = get(_B_CORRELATION)
    causation = get(_B_CAUSATION)
    meta = get(_B_METADATA)
    known = 5
    for value in (target, timestamp, content_type, correlation, causation, meta):
        if value is not None:
            known += 1
    if known != len(fields):
        return Envelope.from_fields(fields)
    try:
        mid = message_id.decode()
        if raw_kind == b"event":
            kind: Any = EVENT
        elif raw_kind == b"command" and target:
            kind = COMMAND
        else:
            return Envelope.from_fields(fields)
        return Envelope(
            Headers(
                mid,
                routing_key.decode(),
                kind,
                source.decode(),
                int(timestamp) if timestamp is not None else int(time.time() * 1000),
                target.decode() if target is not None else "",
                content_type.decode() if content_type is not None else JSON,
                correlation.decode() if correlation else mid,
                causation.decode() if causation is not None else "",
                _META.decode(meta) if meta else {},
            ),
            body,
        )
    except (ValueError, msgspec.DecodeError):
        # UnicodeDecodeError is a ValueError: let from_fields word the error.
        return Envelope.from_fields(fields)


def _positional(flat: Sequence[bytes]) -> Envelope | None:
    """The envelope of an entry in exactly the layout publishers write for plain
    events and commands (no optional headers), without building a dict; None
    for anything else (the general parser decides then)."""
    if flat[4] != _B_KIND or flat[6] != _B_SOURCE:
        return None
    kind: Any
    if len(flat) == 12:
        if flat[8] != _B_TIMESTAMP or flat[5] != b"event":
            return None
        kind, raw_target, ts = EVENT, b"", flat[9]
    elif len(flat) == 14:
        if flat[8] != _B_TARGET or flat[10] != _B_TIMESTAMP or flat[5] != b"command":
            return None
        kind, raw_target, ts = COMMAND, flat[9], flat[11]
    else:
        return None
    try:
        mid = flat[1].decode()
        routing_key = flat[3].decode()
        source = flat[7].decode()
        target = raw_target.decode()
        timestamp = int(ts)
    except ValueError:
        return None
    if not (mid and routing_key and source) or (kind is COMMAND and not target):
        return None
    return Envelope(
        Headers(mid, routing_key, kind, source, timestamp, target, JSON, mid, "", {}),
        flat[-1],
    )


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    it = iter(flat)
    return dict(zip(it, it, strict=False))


def _text_fields(fields: Mapping[bytes, bytes]) -> dict[str, str | bytes]:
    return {k.decode("utf-8", "replace"): v for k, v in fields.items()}


def _fields_args(fields: Mapping[str, str | bytes] | Mapping[bytes, bytes]) -> list[Any]:
    args: list[Any] = []
    for k, v in fields.items():
        args.append(k)
        args.append(v)
    return args


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


_FIELD_BULKS: Final = {name: _bulk(name.encode()) for name in WIRE_FIELDS}
_COUNT_BULKS: Final = {n: _bulk(str(n).encode()) for n in range(0, 64, 2)}


def _pack_entry(fields: Mapping[str, str | bytes], parts: list[bytes]) -> int:
    """Append one entry's ``count field value ...`` arguments (RESP bulk strings); returns how many."""
    count = 2 * len(fields)
    parts.append(_COUNT_BULKS.get(count) or _bulk(str(count).encode()))
    append = parts.append
    for name, value in fields.items():
        append(_FIELD_BULKS.get(name) or _bulk(name.encode()))
        data = value.encode() if isinstance(value, str) else value
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return count + 1


_CRLF: Final = b"\r\n"
_KIND_BULKS: Final = {EVENT: _bulk(b"event"), COMMAND: _bulk(b"command")}
#: packed bulk strings of routing keys and service names (few distinct values)
_NAME_BULKS: dict[str, bytes] = {}
_NAME_BULKS_MAX: Final = 4096


def _name_bulk(name: str) -> bytes:
    packed = _NAME_BULKS.get(name)
    if packed is None:
        packed = _bulk(name.encode())
        if len(_NAME_BULKS) < _NAME_BULKS_MAX:
            _NAME_BULKS[name] = packed
    return packed


_HEAD_6: Final = _COUNT_BULKS[12] + _FIELD_BULKS["message_id"]
_HEAD_7: Final = _COUNT_BULKS[14] + _FIELD_BULKS["message_id"]
_F_ROUTING: Final = _FIELD_BULKS["routing_key"]
_F_KIND: Final = _FIELD_BULKS["kind"]
_F_SOURCE: Final = _FIELD_BULKS["source_service"]
_F_TARGET: Final = _FIELD_BULKS["target_service"]
_F_TIMESTAMP: Final = _FIELD_BULKS["timestamp"]
_F_BODY: Final = _FIELD_BULKS["body"]


def _pack_envelope(envelope: Envelope, parts: list[bytes]) -> int:
    """``_pack_entry(envelope.to_fields())`` without the dict, for the usual headers."""
    h = envelope.headers
    if (
        h.metadata
        or h.causation_id
        or h.content_type != JSON
        or (h.correlation_id and h.correlation_id != h.message_id)
    ):
        return _pack_entry(envelope.to_fields(), parts)
    mid = h.message_id.encode()
    ts = b"%d" % h.timestamp_ms
    body = envelope.body
    if h.target_service:
        parts.append(
            b"%s$%d\r\n%s\r\n%s%s%s%s%s%s%s%s%s$%d\r\n%s\r\n%s$%d\r\n%s\r\n"
            % (
                _HEAD_7, len(mid), mid,
                _F_ROUTING, _name_bulk(h.routing_key),
                _F_KIND, _KIND_BULKS[h.kind],
                _F_SOURCE, _name_bulk(h.source_service),
                _F_TARGET, _name_bulk(h.target_service),
                _F_TIMESTAMP, len(ts), ts,
                _F_BODY, len(body), body,
            )
        )  # fmt: skip
        return 15
    parts.append(
        b"%s$%d\r\n%s\r\n%s%s%s%s%s%s%s$%d\r\n%s\r\n%s$%d\r\n%s\r\n"
        % (
            _HEAD_6, len(mid), mid,
            _F_ROUTING, _name_bulk(h.routing_key),
            _F_KIND, _KIND_BULKS[h.kind],
            _F_SOURCE, _name_bulk(h.source_service),
            _F_TIMESTAMP, len(ts), ts,
            _F_BODY, len(body), body,
        )
    )  # fmt: skip
    return 13


def _is_nogroup(exc: BaseException) -> bool:
    # UNBLOCKED: the stream or group was deleted while XREADGROUP was blocked on it.
    text = str(exc)
    return "NOGROUP" in text or text.startswith("UNBLOCKED")


_TRANSIENT_REPLIES: Final = ("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY")


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ReadOnlyError, OSError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


def _unavailable(what: str, exc: BaseException) -> TransportError:
    error = TransportError(f"Redis unavailable while {what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


class _Xadd:
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


class _Channels:
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
        self._xadd: dict[str, _Xadd] = {}

    def options(self, channel: str) -> ChannelOptions:
        return self.per_channel.get(channel, self.default)

    def keys(self, channel: str) -> ChannelKeys:
        keys = self._keys.get(channel)
        if keys is None:
            keys = self._keys[channel] = ChannelKeys(channel, self.prefix)
        return keys

    def xadd(self, channel: str) -> _Xadd:
        builder = self._xadd.get(channel)
        if builder is None:
            builder = self._xadd[channel] = _Xadd(self.keys(channel), self.options(channel))
        return builder


class RedisTransport:
    """Channels on Redis Streams (asyncio). Implements Transport and DeadLetterStore.

    ``RedisTransport(url)`` connects lazily; ``await transport.check()``
    raises :class:`~toolkit.redis_url.RedisUnavailable` with a clear message
    when the server cannot be reached. Pass ``client`` to share an existing
    ``redis.asyncio.Redis`` connection pool.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.asyncio.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        options: ChannelOptions | None = None,
        channels: Mapping[str, ChannelOptions] | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self._owns_client = client is None
        base = client if client is not None else async_client(self.url)
        # Our own client object on the same pool: raw reply callbacks must not
        # change the behaviour of a client the application also uses.
        self.redis = redis.asyncio.Redis(connection_pool=base.connection_pool)
        for command in _RAW_COMMANDS:
            self.redis.set_response_callback(command, _raw)
        self._channels = _Channels(prefix, options, channels)
        self.prefix = self._channels.prefix
        self._outbox: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]] = []
        self._writer: asyncio.Future[None] | None = None
        self._tick = self.redis.register_script(_TICK)
        self._retry_later = self.redis.register_script(_RETRY_LATER)
        self._trim = self.redis.register_script(_TRIM_ACKED)
        self._leave = self.redis.register_script(_LEAVE)
        self._append_script = self.redis.register_script(_APPEND)
        self._append_sha: str = self._append_script.sha

    def options(self, channel: str) -> ChannelOptions:
        return self._channels.options(channel)

    def keys(self, channel: str) -> ChannelKeys:
        return self._channels.keys(channel)

    async def check(self) -> None:
        """Raise :class:`~toolkit.redis_url.RedisUnavailable` unless the server answers PING."""
        await check_async(self.redis, self.url)

    # -- Transport ----------------------------------------------------------------------

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Append in order; returns once Redis has stored them.

        Sends issued concurrently (``asyncio.gather`` of many publishes, many
        handlers publishing at once) are coalesced into one pipelined round
        trip, in the order they were issued. A connection dropped mid-call is
        retried, so a message may be stored twice (consumers must be
        idempotent anyway: delivery is at least once).
        """
        if not envelopes:
            return
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, envelopes, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        await done

    async def _write(self) -> None:
        """Drain the outbox: one round trip per round of queued sends, one command per channel."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._append(batch)
            except Exception as exc:
                error: BaseException = exc
                if _is_transient(exc):
                    error = _unavailable("sending", exc)
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    def _pack_append(
        self, batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]]
    ) -> tuple[bytes, int]:
        by_channel: dict[str, list[Envelope]] = {}
        for channel, envelopes, _ in batch:
            by_channel.setdefault(channel, []).extend(envelopes)
        sha = _bulk(self._append_sha.encode())
        chunks: list[bytes] = []
        for channel, envelopes in by_channel.items():
            trim = self._channels.xadd(channel).trim_args()
            parts: list[bytes] = [_bulk(str(len(trim)).encode()), *map(_bulk, trim)]
            argc = 5 + len(trim)
            for envelope in envelopes:
                argc += _pack_envelope(envelope, parts)
            stream = self._channels.keys(channel).stream.encode()
            chunks.append(b"*%d\r\n$7\r\nEVALSHA\r\n%s$1\r\n1\r\n" % (argc, sha))
            chunks.append(_bulk(stream))
            chunks.append(b"".join(parts))
        return b"".join(chunks), len(by_channel)

    async def _append(
        self, batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]]
    ) -> None:
        payload, replies = self._pack_append(batch)
        pool = self.redis.connection_pool
        for attempt in range(3):
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.send_packed_command(payload)
                errors = []
                for _ in range(replies):
                    try:
                        await conn.read_response()
                    except ResponseError as exc:
                        errors.append(exc)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await conn.disconnect()
                if attempt == 2:
                    raise
                # A connection dropped (server restarted?): retry on a fresh one.
                # What the first attempt stored may be stored twice: at least once.
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            except BaseException:
                await conn.disconnect()
                raise
            finally:
                await pool.release(conn)
            if not errors:
                return
            if all(isinstance(e, NoScriptError) for e in errors):
                await self.redis.script_load(_APPEND)
                continue
            raise errors[0]
        raise TransportError("could not append: the script kept disappearing from Redis")

    async def _call_packed(self, payload: bytes) -> Any:
        """Send one hand-packed command; its reply. A dropped connection is retried once."""
        pool = self.redis.connection_pool
        for attempt in range(2):
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.send_packed_command(payload)
                return await conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await conn.disconnect()
                if attempt:
                    raise
            except ResponseError:
                raise
            except BaseException:
                await conn.disconnect()
                raise
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def add_raw(self, channel: str, fields: Mapping[str, str | bytes]) -> str:
        """Append an entry given as raw wire fields (as another program would); returns its id."""
        entry_id: bytes = await _exec(
            self.redis, *self._channels.xadd(channel).head(), *_fields_args(fields)
        )
        return entry_id.decode()

    async def subscribe(self, channel: str, group: str, consumer: str) -> RedisSubscription:
        validate_name("group", group)
        validate_name("consumer", consumer)
        sub = RedisSubscription(self, channel, group, consumer)
        await sub.ensure_group()
        return sub

    async def ensure_group(self, channel: str, group: str, start: str = "0") -> bool:
        """Create ``group`` on ``channel`` at entry ``start`` (default: the beginning).

        Returns False when it existed already. Creates the stream if needed.
        """
        try:
            await _exec(
                self.redis, "XGROUP", "CREATE", self.keys(channel).stream, group, start, "MKSTREAM"
            )
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            if _is_transient(exc):
                raise _unavailable("creating the group", exc) from exc
            raise
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise _unavailable("creating the group", exc) from exc
        return True

    async def pending_count(self, channel: str, group: str) -> int:
        """Messages delivered to ``group`` and not yet acknowledged (delayed retries included)."""
        try:
            reply = await _exec(self.redis, "XPENDING", self.keys(channel).stream, group)
        except ResponseError as exc:
            if _is_nogroup(exc):
                return 0
            raise
        return int(reply[0])

    async def trim(self, channel: str) -> int:
        """Trim entries every group has acknowledged; returns how many were removed.

        Safe whatever the options say: never drops an entry a group still has
        to handle or has pending. Groups that do not exist yet are not protected.
        """
        removed: int = await self._trim(keys=[self.keys(channel).stream])
        return removed

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.connection_pool.disconnect()

    # -- DeadLetterStore ---------------------------------------------------------------

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters of ``channel``, oldest first, optionally of one routing key, at most ``count``."""
        dead_key = self.keys(channel).dead
        found: list[DeadLetter] = []
        start = "-"
        while count is None or len(found) < count:
            chunk = await _exec(self.redis, "XRANGE", dead_key, start, "+", "COUNT", _DELETE_BATCH)
            if not chunk:
                break
            for entry_id, flat in chunk:
                letter = _dead_letter(entry_id, flat)
                if routing_key is None or (
                    letter.envelope is not None
                    and letter.envelope.headers.routing_key == routing_key
                ):
                    found.append(letter)
                    if count is not None and len(found) >= count:
                        break
            if len(chunk) < _DELETE_BATCH:
                break
            start = "(" + chunk[-1][0].decode()
        return found

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        chunk = await _exec(
            self.redis, "XRANGE", self.keys(channel).dead, dead_letter_id, dead_letter_id
        )
        return _dead_letter(chunk[0][0], chunk[0][1]) if chunk else None

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back to their channel: same message id, delivery count 1.

        A replayed entry carries ``replay_group``: only the group that
        dead-lettered it handles it again (other groups of a shared stream
        acknowledge and skip it). Entries that are not valid envelopes stay.
        """
        keys = self.keys(channel)
        xadd = self._channels.xadd(channel)
        replayed = 0
        for dead_id in dead_letter_ids:
            letter = await self.dead_letter(channel, dead_id)
            if letter is None or letter.envelope is None:
                continue
            fields = dict(letter.fields)
            if letter.group:
                fields[F_REPLAY_GROUP] = letter.group
            pipe = self.redis.pipeline(transaction=True)
            pipe.execute_command(*xadd.head(), *_fields_args(fields))
            pipe.execute_command("XDEL", keys.dead, dead_id)
            await pipe.execute()
            replayed += 1
        return replayed

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        dead_key = self.keys(channel).dead
        if dead_letter_ids is None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.execute_command("XLEN", dead_key)
            pipe.execute_command("DEL", dead_key)
            length, _ = await pipe.execute()
            return int(length)
        removed = 0
        ids = list(dead_letter_ids)
        for i in range(0, len(ids), _DELETE_BATCH):
            removed += int(await _exec(self.redis, "XDEL", dead_key, *ids[i : i + _DELETE_BATCH]))
        return removed


def _dead_letter(entry_id: bytes, flat: Sequence[bytes]) -> DeadLetter:
    fields: dict[str, str | bytes] = {}
    extra: dict[str, str] = {}
    for k, v in _pairs(flat).items():
        name = k.decode("utf-8", "replace")
        if name.startswith(DLQ_PREFIX):
            extra[name[len(DLQ_PREFIX) :]] = v.decode("utf-8", "replace")
        else:
            fields[name] = v
    original = {k: v for k, v in fields.items() if k != F_REPLAY_GROUP}
    try:
        envelope: Envelope | None = Envelope.from_fields(original)
    except WireError:
        envelope = None
    reason = extra.pop("reason", "")
    group = extra.pop("group", "")
    return DeadLetter(entry_id.decode(), reason, group, envelope, original, extra)


class RedisSubscription:
    """One consumer in one group on one channel. Implements Subscription and DelayedRetry."""

    def __init__(self, transport: RedisTransport, channel: str, group: str, consumer: str) -> None:
        self._transport = transport
        self._redis = transport.redis
        self.channel = channel
        self.group = group
        self.consumer = consumer
        self.keys = keys = transport.keys(channel)
        self.options = options = transport.options(channel)
        self._stream = keys.stream
        self._delay = keys.delay(group)
        self._min_idle_ms = int(options.visibility_timeout * 1000)
        self._reclaim_every = options.reclaim_every
        self._max_bytes = options.max_message_bytes
        #: monotonic time of the next reclaim / due-retry check
        self._next_tick = 0.0
        #: monotonic due times of retries this consumer scheduled
        self._due: list[float] = []
        self._cursor = "0-0"
        #: id of the last new entry read: a group deleted under us is recreated
        #: here, so entries already handled are not handled again
        self._last_id = "0"
        self._group_arg = group.encode()
        self._ack_head = _bulk(self._stream.encode()) + _bulk(self._group_arg)
        self._read_head = ("XREADGROUP", "GROUP", group, consumer, "COUNT")
        self._next_trim = time.monotonic() + options.trim_interval
        self._closed = False

    async def ensure_group(self) -> None:
        await self._transport.ensure_group(self.channel, self.group, self._last_id)

    # -- receiving ---------------------------------------------------------------------

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        deadline = time.monotonic() + timeout
        try:
            while True:
                now = time.monotonic()
                if now >= self._next_tick or (self._due and self._due[0] <= now):
                    found = await self._run_tick(max_count)
                    if found:
                        return found
                    now = time.monotonic()
                args: list[Any] = [*self._read_head, max_count]
                remaining = deadline - now
                if remaining > 0:
                    # Wake for the next reclaim check or due retry, not later.
                    wake = self._next_tick
                    if self._due and self._due[0] < wake:
                        wake = self._due[0]
                    block = min(remaining, wake - now, _MAX_BLOCK)
                    args += ["BLOCK", max(int(block * 1000), 1)]
                args += ["STREAMS", self._stream, ">"]
                reply = await _exec(self._redis, *args)
                if reply:
                    entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))
                    found = await self._deliveries(entries, None)
                    if found:
                        return found
                if time.monotonic() >= deadline:
                    return []
        except Exception as exc:
            await self._handle_error("receiving", exc)
            return []

    async def _run_tick(self, max_count: int) -> list[Delivery]:
        result = await self._transport._tick(
            keys=[self._stream, self._delay],
            args=[self.group, self.consumer, max_count, self._min_idle_ms, self._cursor],
        )
        cursor, claimed, wait_ms = result
        self._cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        now = time.monotonic()
        self._next_tick = now + self._reclaim_every
        due = self._due
        while due and due[0] <= now:
            heapq.heappop(due)
        if wait_ms is not None and int(wait_ms) >= 0:
            # Retries scheduled by consumers that have gone away: pick them up on time.
            heapq.heappush(due, now + int(wait_ms) / 1000)
        if not claimed:
            return []
        return await self._deliveries([(c[0], c[1]) for c in claimed], [int(c[2]) for c in claimed])

    async def _deliveries(
        self, entries: Iterable[Sequence[Any]], counts: list[int] | None
    ) -> list[Delivery]:
        out: list[Delivery] = []
        bad: list[tuple[bytes, dict[bytes, bytes], str]] = []
        skip: list[bytes] = []
        channel, max_bytes = self.channel, self._max_bytes
        last: bytes | None = None
        for index, (entry_id, flat) in enumerate(entries):
            last = entry_id
            if flat is None:
                # Deleted (XDEL) after it was delivered: nothing left to handle.
                skip.append(entry_id)
                continue
            if (
                len(flat) in (12, 14)
                and flat[0] == _B_MESSAGE_ID
                and len(flat[-1]) <= max_bytes
                and flat[-2] == _B_BODY
                and flat[2] == _B_ROUTING_KEY
            ):
                fast = _positional(flat)
                if fast is not None:
                    count = 1 if counts is None else counts[index]
                    out.append(Delivery(fast, channel, entry_id.decode(), count))
                    continue
            fields = _pairs(flat)
            if _B_REPLAY_GROUP in fields and fields[_B_REPLAY_GROUP] != self._group_arg:
                skip.append(entry_id)
                continue
            body = fields.get(_B_BODY)
            if body is not None and len(body) > max_bytes:
                bad.append(
                    (
                        entry_id,
                        fields,
                        f"message too large: body is {len(body)} bytes, the channel's "
                        f"limit is {max_bytes}",
                    )
                )
                continue
            try:
                envelope = parse_entry(fields)
            except WireError as exc:
                bad.append((entry_id, fields, f"invalid envelope: {exc}"))
                continue
            out.append(
                Delivery(
                    envelope, channel, entry_id.decode(), 1 if counts is None else counts[index]
                )
            )
        if counts is None and last is not None:
            self._last_id = last.decode()
        if bad or skip:
            await self._settle_unreadable(bad, skip)
        return out

    async def _settle_unreadable(
        self, bad: list[tuple[bytes, dict[bytes, bytes], str]], skip: list[bytes]
    ) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for entry_id, fields, reason in bad:
            log.warning(
                "dead-lettered entry %s on %s (message %s): %s",
                entry_id.decode(),
                self.channel,
                fields.get(_B_MESSAGE_ID, b"?").decode("utf-8", "replace"),
                reason,
            )
            pipe.execute_command(
                "XADD",
                self.keys.dead,
                "*",
                *_fields_args(fields),
                *_fields_args(self._dlq_fields(entry_id, reason, {}, 1)),
            )
        ids = [entry_id for entry_id, _, _ in bad] + skip
        pipe.execute_command("XACK", self._stream, self.group, *ids)
        await pipe.execute()

    def _dlq_fields(
        self, entry_id: bytes | str, reason: str, details: Mapping[str, str], attempts: int
    ) -> dict[str, str]:
        fields = {
            "dlq_reason": reason,
            "dlq_group": self.group,
            "dlq_channel": self.channel,
            "dlq_consumer": self.consumer,
            "dlq_entry_id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            "dlq_at": str(int(time.time() * 1000)),
            "dlq_attempts": str(attempts),
        }
        for key, value in details.items():
            fields[DLQ_PREFIX + key] = value
        return fields

    async def _handle_error(self, what: str, exc: BaseException) -> None:
        if _is_nogroup(exc):
            log.warning(
                "group %s on %s is gone (stream or group deleted?); recreating it from entry %s",
                self.group,
                self.channel,
                self._last_id,
            )
            self._due.clear()
            self._cursor = "0-0"
            await self.ensure_group()
            return
        if _is_transient(exc):
            raise _unavailable(f"{what} on {self.channel!r}", exc) from exc
        raise exc

    # -- settling ----------------------------------------------------------------------

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            ids = [d.delivery_id.encode() for d in deliveries]
            # Packed by hand: redis-py's per-argument packing is most of an XACK's cost.
            payload = b"".join(
                [
                    b"*%d\r\n$4\r\nXACK\r\n" % (3 + len(ids)),
                    self._ack_head,
                    *[b"$%d\r\n%s\r\n" % (len(i), i) for i in ids],
                ]
            )
            await self._transport._call_packed(payload)
            if self.options.trim_acknowledged and time.monotonic() >= self._next_trim:
                self._next_trim = time.monotonic() + self.options.trim_interval
                removed = await self._transport.trim(self.channel)
                if removed:
                    log.debug("trimmed %d acknowledged entries from %s", removed, self.channel)
        except Exception as exc:
            await self._handle_error("acknowledging", exc)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        details = dict(details or {})
        attempts = int(details.pop("attempts", delivery.delivery_count))
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.execute_command(
                "XADD",
                self.keys.dead,
                "*",
                *_fields_args(delivery.envelope.to_fields()),
                *_fields_args(self._dlq_fields(delivery.delivery_id, reason, details, attempts)),
            )
            pipe.execute_command("XACK", self._stream, self.group, delivery.delivery_id)
            pipe.execute_command("ZREM", self._delay, delivery.delivery_id)
            await pipe.execute()
        except Exception as exc:
            await self._handle_error("dead-lettering", exc)

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        try:
            await self._transport._retry_later(
                keys=[self._delay], args=[max(int(delay * 1000), 0), delivery.delivery_id]
            )
        except Exception as exc:
            await self._handle_error("scheduling a retry", exc)
            return
        heapq.heappush(self._due, time.monotonic() + delay)

    async def close(self) -> None:
        """Leave the group; a consumer with nothing pending is removed from it."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._transport._leave(keys=[self._stream], args=[self.group, self.consumer])
        except Exception as exc:
            if not (_is_nogroup(exc) or _is_transient(exc)):
                raise
            log.debug("could not leave group %s on %s: %s", self.group, self.channel, exc)


class SyncRedisTransport:
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
        self._channels = _Channels(prefix, options, channels)

    def check(self) -> None:
        check_sync(self.redis, self.url)

    def keys(self, channel: str) -> ChannelKeys:
        return self._channels.keys(channel)

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        xadd = self._channels.xadd(channel)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for envelope in envelopes:
                pipe.execute_command(*xadd.envelope(envelope))  # type: ignore[no-untyped-call]
            pipe.execute()
        except Exception as exc:
            if _is_transient(exc):
                raise _unavailable(f"sending to {channel!r}", exc) from exc
            raise

    def close(self) -> None:
        if self._owns_client:
            self.redis.close()
