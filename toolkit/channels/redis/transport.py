"""The asyncio Redis Streams transport: sending, coalescing, groups and trimming.

* ``send``: concurrent sends are queued and written together, one append
  script call per channel in one hand-packed round trip.
* ``subscribe``: a :class:`~toolkit.channels.redis.subscription.RedisSubscription`
  (one consumer in one group), its group created first.
* the dead-letter store (``dead_letters``, ``replay``, ``purge``) comes from
  :class:`~toolkit.channels.redis.dead_letters.RedisDeadLetters`; listing and
  removing groups, and forgetting consumers that have gone away, from
  :class:`~toolkit.channels.redis.groups.RedisGroups`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

from toolkit.channels.base import TransportError
from toolkit.channels.redis.connection import (
    HeldConnection,
    async_client,
    check_async,
    resolve_url,
)
from toolkit.channels.redis.dead_letters import RedisDeadLetters
from toolkit.channels.redis.errors import is_nogroup, is_transient, unavailable
from toolkit.channels.redis.groups import RedisGroups
from toolkit.channels.redis.keys import DEFAULT_PREFIX, ChannelKeys, validate_name
from toolkit.channels.redis.options import ChannelOptions, Channels
from toolkit.channels.redis.raw import RAW_COMMANDS, execute, raw_reply
from toolkit.channels.redis.resp import bulk, fields_args, pack_envelope
from toolkit.channels.redis.schedule import RedisSchedules
from toolkit.channels.redis.scripts import (
    APPEND,
    FORGET_IDLE,
    LEAVE,
    RENEW,
    RETRY_LATER,
    TICK,
    TRIM_ACKED,
)
from toolkit.channels.redis.status import RedisStatus
from toolkit.channels.redis.subscription import RedisSubscription
from toolkit.envelope import Envelope

__all__ = ["RedisTransport"]


class RedisTransport(RedisDeadLetters, RedisGroups, RedisStatus, RedisSchedules):
    """Channels on Redis Streams (asyncio). Implements Transport, DeadLetterStore and
    ReportsStatus.

    ``RedisTransport(url)`` connects lazily; ``await transport.check()``
    raises :class:`~toolkit.channels.redis.RedisUnavailable` with a clear message
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
        for command in RAW_COMMANDS:
            self.redis.set_response_callback(command, raw_reply)
        self._channels = Channels(prefix, options, channels)
        self.prefix = self._channels.prefix
        self._outbox: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]] = []
        self._writer: asyncio.Future[None] | None = None
        #: the writer's connection (one round of sends at a time)
        self._writer_conn = self.held_connection()
        self._tick = self.redis.register_script(TICK)
        self._retry_later = self.redis.register_script(RETRY_LATER)
        self._renew = self.redis.register_script(RENEW)
        self._trim = self.redis.register_script(TRIM_ACKED)
        self._leave = self.redis.register_script(LEAVE)
        self._forget_idle = self.redis.register_script(FORGET_IDLE)
        self._append_script = self.redis.register_script(APPEND)
        self._append_sha: str = self._append_script.sha

    def options(self, channel: str) -> ChannelOptions:
        return self._channels.options(channel)

    def keys(self, channel: str) -> ChannelKeys:
        return self._channels.keys(channel)

    async def check(self) -> None:
        """Raise :class:`~toolkit.channels.redis.RedisUnavailable` unless the server answers PING."""
        await check_async(self.redis, self.url)

    # -- Transport ----------------------------------------------------------------------

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Append in order; returns once Redis has stored them.

        Sends issued concurrently (``asyncio.gather`` of many publishes, many
        handlers publishing at once) are coalesced into one pipelined round
        trip, in the order they were issued; each is settled by its own
        channel's reply, so a failing channel fails only the sends to it. A
        connection dropped mid-call is retried, so a message may be stored
        twice (consumers must be idempotent anyway: delivery is at least once).
        """
        if not envelopes:
            return
        for envelope in envelopes:
            if envelope.headers.deliver_at_ms:
                return await self._send_scheduled(channel, envelopes)
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, envelopes, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        await done

    async def _write(self) -> None:
        """Drain the outbox: one round trip per round of queued sends, one command per channel.

        Each send is settled by its own channel's reply: a failure on one
        channel fails only the sends to it, never those stored elsewhere.
        """
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                failed = await self._append(batch)
            except Exception as exc:
                # The round trip as a whole failed: what was stored is unknown.
                error: BaseException = exc
                if is_transient(exc):
                    error = unavailable("sending", exc)
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            if not failed:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
                continue
            # A channel's command stops at its first failing entry: the sends
            # wholly before it were stored, that one and those after it were not.
            offsets: dict[str, int] = {}
            for channel, envelopes, done in batch:
                end = offsets.get(channel, 0) + len(envelopes)
                offsets[channel] = end
                failure = failed.get(channel)
                if done.done():
                    continue
                if failure is None or end <= failure[0]:
                    done.set_result(None)
                else:
                    done.set_exception(failure[1])

    def _pack_append(
        self, batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]]
    ) -> tuple[bytes, list[str]]:
        by_channel: dict[str, list[Envelope]] = {}
        for channel, envelopes, _ in batch:
            by_channel.setdefault(channel, []).extend(envelopes)
        sha = bulk(self._append_sha.encode())
        chunks: list[bytes] = []
        for channel, envelopes in by_channel.items():
            trim = self._channels.xadd(channel).trim_args()
            parts: list[bytes] = [bulk(str(len(trim)).encode()), *map(bulk, trim)]
            argc = 5 + len(trim)
            for envelope in envelopes:
                argc += pack_envelope(envelope, parts)
            stream = self._channels.keys(channel).stream.encode()
            chunks.append(b"*%d\r\n$7\r\nEVALSHA\r\n%s$1\r\n1\r\n" % (argc, sha))
            chunks.append(bulk(stream))
            chunks.append(b"".join(parts))
        return b"".join(chunks), list(by_channel)

    async def _append(
        self, batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]]
    ) -> dict[str, tuple[int, BaseException]]:
        """Append every send of ``batch``; the channels that failed, each with the
        number of its entries stored (in batch order) and the error for the rest."""
        failed: dict[str, tuple[int, BaseException]] = {}
        for _ in range(3):
            payload, channels = self._pack_append(batch)
            replies = await self._round_trip(payload, len(channels))
            missing: set[str] = set()
            for channel, reply in zip(channels, replies, strict=True):
                if isinstance(reply, NoScriptError):
                    missing.add(channel)
                elif isinstance(reply, ResponseError):
                    failed[channel] = (0, self._send_error(channel, reply))
                elif isinstance(reply, list):
                    # The script's {stored, error} after a failing XADD (see APPEND).
                    text = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
                    failed[channel] = (
                        int(reply[0]),
                        self._send_error(channel, ResponseError(text)),
                    )
            if not missing:
                return failed
            await self.redis.script_load(APPEND)
            batch = [pending for pending in batch if pending[0] in missing]
        for channel, _, _ in batch:
            failed[channel] = (
                0,
                TransportError("could not append: the script kept disappearing from Redis"),
            )
        return failed

    def _send_error(self, channel: str, exc: ResponseError) -> BaseException:
        if is_transient(exc):
            return unavailable(f"sending to {channel!r}", exc)
        # The reply's code stays first: callers and is_transient read it there.
        error = ResponseError(f"{exc} (sending to channel {channel!r})")
        error.__cause__ = exc
        return error

    async def _round_trip(
        self, payload: bytes, replies: int, held: HeldConnection | None = None
    ) -> list[Any]:
        """Send packed commands on ``held`` (the writer's connection by default), read
        their replies (an error reply as its exception).

        A dropped connection is retried on a fresh one: what the first attempt
        stored may be stored twice (delivery is at least once).
        """
        held = held or self._writer_conn
        for attempt in range(3):
            conn = await held.get()
            try:
                await conn.send_packed_command(payload)
                out: list[Any] = []
                for _ in range(replies):
                    try:
                        out.append(await conn.read_response())
                    except ResponseError as exc:
                        out.append(exc)
                return out
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await held.drop()
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
            except BaseException:
                await held.drop()
                raise
        raise AssertionError("unreachable")

    async def _call_packed(self, payload: bytes, held: HeldConnection) -> Any:
        """Send one hand-packed command on ``held``; its reply. A dropped connection is
        retried once."""
        for attempt in range(2):
            conn = await held.get()
            try:
                await conn.send_packed_command(payload)
                return await conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await held.drop()
                if attempt:
                    raise
            except ResponseError:
                raise
            except BaseException:
                await held.drop()
                raise
        raise AssertionError("unreachable")

    def held_connection(self) -> HeldConnection:
        """A connection of this transport's pool for one user's round trips, one at a time."""
        return HeldConnection(self.redis.connection_pool)

    async def add_raw(self, channel: str, fields: Mapping[str, str | bytes]) -> str:
        """Append an entry given as raw wire fields (as another program would); returns its id."""
        entry_id: bytes = await execute(
            self.redis, *self._channels.xadd(channel).head(), *fields_args(fields)
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
            await execute(
                self.redis, "XGROUP", "CREATE", self.keys(channel).stream, group, start, "MKSTREAM"
            )
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            if is_transient(exc):
                raise unavailable("creating the group", exc) from exc
            raise
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise unavailable("creating the group", exc) from exc
        return True

    async def pending_count(self, channel: str, group: str) -> int:
        """Messages delivered to ``group`` and not yet acknowledged (delayed retries included)."""
        try:
            reply = await execute(self.redis, "XPENDING", self.keys(channel).stream, group)
        except ResponseError as exc:
            if is_nogroup(exc):
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
        await self._writer_conn.release()
        if self._owns_client:
            await self.redis.connection_pool.disconnect()
