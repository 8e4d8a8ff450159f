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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError

from toolkit.channels.base import TransportError
from toolkit.channels.redis.connection import (
    HeldConnection,
    HeldNodeConnection,
    async_client,
    check_async,
    cluster_client,
    is_cluster,
    node_of_slot,
    read_replies,
    resolve_url,
)
from toolkit.channels.redis.dead_letters import RedisDeadLetters
from toolkit.channels.redis.errors import is_nogroup, is_transient, unavailable
from toolkit.channels.redis.groups import RedisGroups
from toolkit.channels.redis.keys import DEFAULT_PREFIX, ChannelKeys, band_name, validate_name
from toolkit.channels.redis.options import ChannelOptions, Channels
from toolkit.channels.redis.priorities import PrioritizedSubscription, RedisBands
from toolkit.channels.redis.raw import RAW_COMMANDS, execute, raw_reply
from toolkit.channels.redis.resp import bulk, fields_args, pack_envelope
from toolkit.channels.redis.schedule import RedisSchedules
from toolkit.channels.redis.scripts import (
    APPEND,
    FORGET_IDLE,
    LEAVE,
    OPEN_BAND,
    READ_SEEN,
    RENEW,
    RETRY_LATER,
    TICK,
    TRIM_ACKED,
)
from toolkit.channels.redis.shards import ShardedSubscription, shard_name, split
from toolkit.channels.redis.status import RedisStatus
from toolkit.channels.redis.subscription import RedisSubscription
from toolkit.envelope import Envelope

__all__ = ["RedisTransport"]


class RedisTransport(RedisDeadLetters, RedisGroups, RedisStatus, RedisSchedules, RedisBands):
    """Channels on Redis Streams (asyncio). Implements Transport, DeadLetterStore,
    ReportsStatus, Schedules, Prioritizes (:mod:`~toolkit.channels.redis.priorities`)
    and ExpectsGroups.

    ``RedisTransport(url)`` connects lazily; ``await transport.check()``
    raises :class:`~toolkit.channels.redis.RedisUnavailable` with a clear message
    when the server cannot be reached. Pass ``client`` to share an existing
    ``redis.asyncio.Redis`` connection pool, or a ``redis.asyncio.RedisCluster``
    (the transport makes a client of its own on the same nodes).

    On a Redis Cluster (a cluster URL, see
    :mod:`~toolkit.channels.redis.connection`) the client's slot map is shared
    by everything the transport does: the hand-packed paths hold a connection
    per node (:class:`~toolkit.channels.redis.connection.HeldNodeConnection`),
    sends are grouped per node and written to all nodes at once, and a MOVED
    or ASK reply updates the map and goes to the node it names.
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
        self.redis: Any
        #: the cluster client (its slot map), None on a single server
        self.cluster: AsyncRedisCluster | None = None
        if isinstance(client, AsyncRedisCluster):
            self.cluster = self.redis = _own_cluster_client(client)
            self._owns_client = True
        elif client is None and is_cluster(self.url):
            self.cluster = self.redis = cluster_client(self.url)
        else:
            base = client if client is not None else async_client(self.url)
            # Our own client object on the same pool: raw reply callbacks must not
            # change the behaviour of a client the application also uses.
            self.redis = redis.asyncio.Redis(connection_pool=base.connection_pool)
        #: cluster: sends queued per master, and the writer of each (by node name)
        self._node_outboxes: dict[
            str, list[tuple[str, Sequence[Envelope], asyncio.Future[None]]]
        ] = {}
        self._node_tasks: dict[str, asyncio.Future[None]] = {}
        #: cluster: a connection per (writer, node)
        self._node_writers: dict[tuple[str, str], HeldNodeConnection] = {}
        self._slots: dict[str, int] = {}
        for command in RAW_COMMANDS:
            self.redis.set_response_callback(command, raw_reply)
        self._channels = Channels(prefix, options, channels)
        self.prefix = self._channels.prefix
        #: whether any channel is split into shards (one check per send otherwise)
        self._sharded = self._channels.default.shards > 1 or any(
            o.shards > 1 for o in self._channels.per_channel.values()
        )
        self._outbox: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]] = []
        self._writer: asyncio.Future[None] | None = None
        #: the writer's connection (one round of sends at a time)
        self._writer_conn: HeldConnection | HeldNodeConnection = (
            HeldConnection(self.redis.connection_pool) if self.cluster is None else _NO_WRITER
        )
        self._tick = self.redis.register_script(TICK)
        self._retry_later = self.redis.register_script(RETRY_LATER)
        self._renew = self.redis.register_script(RENEW)
        self._trim = self.redis.register_script(TRIM_ACKED)
        self._leave = self.redis.register_script(LEAVE)
        self._forget_idle = self.redis.register_script(FORGET_IDLE)
        self._append_script = self.redis.register_script(APPEND)
        self._append_sha: str = self._append_script.sha
        self._open_band = self.redis.register_script(OPEN_BAND)
        self.read_seen_sha: str = self.redis.register_script(READ_SEEN).sha
        self._open_bands = set()  # RedisBands
        self._expected = {}

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
        if self._sharded and self._channels.options(channel).shards > 1:
            parts = split(channel, envelopes, self._channels.options(channel).shards)
            await asyncio.gather(*(self._send_part(name, part) for name, part in parts.items()))
            return
        await self._send_part(channel, envelopes)

    async def _send_part(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Send to one stream (a channel's, or one shard's), or to its priority bands;
        scheduled messages wait on the stream they go to."""
        for envelope in envelopes:
            headers = envelope.headers
            if headers.priority:
                return await self._send_bands(channel, envelopes)
            if headers.deliver_at_ms:
                return await self._send_scheduled(channel, envelopes)
        await self._send(channel, envelopes)

    async def _send_stream(self, name: str, envelopes: Sequence[Envelope]) -> None:
        """Append to one stream (a band's, too); scheduled messages wait on it."""
        for envelope in envelopes:
            if envelope.headers.deliver_at_ms:
                return await self._send_scheduled(name, envelopes)
        await self._send(name, envelopes)

    def band_subscription(self, main: RedisSubscription, priority: int) -> RedisSubscription:
        """``main``'s consumer on band ``priority`` of its stream."""
        return RedisSubscription(
            self, main.channel, main.group, main.consumer, band_name(main.keyed, priority)
        )

    async def _send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Append to one stream (a channel's, or one shard's)."""
        if self.cluster is not None:
            await self._send_to_node(channel, envelopes)
            return
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, envelopes, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        await done

    async def _send_to_node(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Cluster: queue the send with the other sends to the same master; each master
        has a writer of its own, so a master that hangs holds up only its own sends."""
        assert self.cluster is not None
        node = await node_of_slot(self.cluster, self._slot(channel))
        done = asyncio.get_running_loop().create_future()
        box = self._node_outboxes.setdefault(node.name, [])
        box.append((channel, envelopes, done))
        task = self._node_tasks.get(node.name)
        if task is None or task.done():
            self._node_tasks[node.name] = asyncio.ensure_future(self._write_node(node.name))
        await done

    async def _write_node(self, name: str) -> None:
        while self._node_outboxes.get(name):
            batch = self._node_outboxes.pop(name)
            await self._write_batch(batch, name)

    def _slot(self, channel: str) -> int:
        slot = self._slots.get(channel)
        if slot is None:
            slot = self._slots[channel] = key_slot(self._channels.keys(channel).stream.encode())
        return slot

    async def _write(self) -> None:
        """Drain the outbox: one round trip per round of queued sends, one command per channel."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            await self._write_batch(batch, "")

    async def _write_batch(
        self, batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]], writer: str
    ) -> None:
        """Append a round of sends and settle each by its own channel's reply: a failure on
        one channel fails only the sends to it, never those stored elsewhere."""
        try:
            failed = await self._append(batch, writer)
        except Exception as exc:
            # The round trip as a whole failed: what was stored is unknown.
            error: BaseException = exc
            if is_transient(exc):
                error = unavailable("sending", exc)
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        if not failed:
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)
            return
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
        channels = list(by_channel)
        chunks.append(self._wait_command(channels))
        return b"".join(chunks), channels

    async def _append(
        self, batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]], writer: str
    ) -> dict[str, tuple[int, BaseException]]:
        """Append every send of ``batch``; the channels that failed, each with the
        number of its entries stored (in batch order) and the error for the rest."""
        failed: dict[str, tuple[int, BaseException]] = {}
        for _ in range(3):
            if self.cluster is None:
                payload, channels = self._pack_append(batch)
                replies: Sequence[Any] = await self._round_trip(payload, len(channels))
                replies = self._durable(channels, replies, failed)
            else:
                channels, replies = await self._append_per_node(batch, failed, writer)
            missing: set[str] = set()
            for channel, reply in zip(channels, replies, strict=True):
                if isinstance(reply, NoScriptError):
                    missing.add(channel)
                elif isinstance(reply, MovedError):
                    # The slot moved (failover, resharding): the map follows, the send retries.
                    await self._moved(reply)
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
            await self._load_append(missing)
            batch = [pending for pending in batch if pending[0] in missing]
            if not batch:
                return failed
        for channel, _, _ in batch:
            failed[channel] = (
                0,
                TransportError("could not append: the script kept disappearing from Redis"),
            )
        return failed

    def _replies(self, channels: Sequence[str]) -> int:
        """Replies to a packed append of ``channels``: one each, and WAIT's when durable."""
        for channel in channels:
            if self._channels.options(channel).durable_replicas:
                return len(channels) + 1
        return len(channels)

    def _wait_command(self, channels: Sequence[str]) -> bytes:
        """``WAIT n timeout`` for the most replicas any of ``channels`` asks for; b"" for none."""
        replicas = 0
        timeout = 0
        for channel in channels:
            options = self._channels.options(channel)
            if options.durable_replicas > replicas:
                replicas = options.durable_replicas
                timeout = max(timeout, options.durable_timeout_ms)
        if not replicas:
            return b""
        return b"*3\r\n$4\r\nWAIT\r\n%s%s" % (bulk(b"%d" % replicas), bulk(b"%d" % timeout))

    def _durable(
        self,
        channels: Sequence[str],
        replies: Sequence[Any],
        failed: dict[str, tuple[int, BaseException]],
    ) -> Sequence[Any]:
        """The append replies of a payload ``_append_payload`` ended with ``WAIT`` (when it
        did); channels the replicas did not all confirm go into ``failed``."""
        if len(replies) == len(channels):
            return replies
        acked, replies = replies[-1], replies[:-1]
        for channel, reply in zip(channels, replies, strict=True):
            wanted = self._channels.options(channel).durable_replicas
            if not wanted or isinstance(reply, (Exception, list)):
                continue
            if isinstance(acked, Exception) or int(acked) < wanted:
                got = acked if isinstance(acked, Exception) else f"{int(acked)} replica(s)"
                failed[channel] = (
                    0,
                    TransportError(
                        f"sent to {channel!r}, but not confirmed by {wanted} replica(s) "
                        f"(got {got}): a failover now could lose it"
                    ),
                )
        return replies

    async def _append_per_node(
        self,
        batch: list[tuple[str, Sequence[Envelope], asyncio.Future[None]]],
        failed: dict[str, tuple[int, BaseException]],
        writer: str,
    ) -> tuple[list[str], list[Any]]:
        """Cluster: the batch's appends grouped by the node serving each channel (one node
        but after a MOVED), written to every node at once; the channels and their replies."""
        assert self.cluster is not None
        per_node: dict[str, tuple[ClusterNode, list[Any]]] = {}
        for pending in batch:
            node = await node_of_slot(self.cluster, self._slot(pending[0]))
            per_node.setdefault(node.name, (node, []))[1].append(pending)

        async def one(name: str, node: ClusterNode, part: list[Any]) -> list[Any]:
            # One connection per writer and node: writers run at once, a connection
            # serves one round trip at a time.
            held = self._node_writers.get((writer, name))
            if held is None or await node_of_slot(self.cluster, held.slot) is not node:  # type: ignore[arg-type]
                # New, or its slot has moved to another master since: one of this part's.
                if held is not None:
                    await held.release()
                slot = self._slot(part[0][0])
                held = HeldNodeConnection(self.cluster, slot)  # type: ignore[arg-type]
                self._node_writers[(writer, name)] = held
            payload, channels = self._pack_append(part)
            try:
                replies = await self._round_trip(payload, self._replies(channels), held)
            except Exception as exc:
                return [exc] * len(channels)
            return list(self._durable(channels, replies, failed))

        groups = list(per_node.items())
        results = await asyncio.gather(*(one(name, n, part) for name, (n, part) in groups))
        channels: list[str] = []
        replies: list[Any] = []
        for (_, (_, part)), result in zip(groups, results, strict=True):
            seen: dict[str, None] = {}
            for pending in part:
                seen.setdefault(pending[0])
            channels += seen
            replies += result
        for channel, reply in zip(channels, replies, strict=True):
            if isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                error = (
                    unavailable(f"sending to {channel!r}", reply) if is_transient(reply) else reply
                )
                failed[channel] = (0, error)
        return channels, [
            None if isinstance(r, Exception) and not isinstance(r, ResponseError) else r
            for r in replies
        ]

    async def _moved(self, exc: MovedError) -> None:
        """Follow a MOVED reply: the shared slot map learns the slot's new master, and
        which nodes are masters now (a script is loaded on every master: a promoted
        replica has none of them yet)."""
        if self.cluster is not None:
            # The map as a node sees it first, then the MOVED over it: the node that
            # answered may not have heard of the failover yet, the MOVED is news.
            await self.cluster.nodes_manager.initialize()
            await self.cluster.nodes_manager.move_slot(exc)

    async def _asking(self, exc: AskError, payload: bytes, replies: int) -> list[Any]:
        """A slot being migrated: ``ASKING`` and the commands on the node the ASK names."""
        assert self.cluster is not None
        manager = self.cluster.nodes_manager
        node = manager.get_node(host=exc.host, port=exc.port)
        if node is None:
            node = ClusterNode(exc.host, exc.port, **manager.connection_kwargs)
            manager.set_nodes(manager.nodes_cache, {node.name: node})
        conn = node.acquire_connection()
        try:
            await conn.send_packed_command(b"*1\r\n$6\r\nASKING\r\n" + payload)
            await conn.read_response()
            return await read_replies(conn, replies)
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            node.release(conn)

    async def _load_append(self, channels: set[str]) -> None:
        await self.load_script(APPEND, [self._channels.keys(c).stream for c in channels])

    async def load_script(self, text: str, keys: Iterable[str]) -> None:
        """Load a script where ``keys`` are served (every master of the client's map
        would miss a replica promoted since the map was read)."""
        if self.cluster is None:
            await self.redis.script_load(text)
            return
        nodes = {await node_of_slot(self.cluster, key_slot(k.encode())) for k in keys}
        for node in nodes:
            await self.cluster.execute_command("SCRIPT", "LOAD", text, target_nodes=node)

    def _send_error(self, channel: str, exc: ResponseError) -> BaseException:
        if is_transient(exc):
            return unavailable(f"sending to {channel!r}", exc)
        # The reply's code stays first: callers and is_transient read it there.
        error = ResponseError(f"{exc} (sending to channel {channel!r})")
        error.__cause__ = exc
        return error

    async def _round_trip(
        self,
        payload: bytes,
        replies: int,
        held: HeldConnection | HeldNodeConnection | None = None,
    ) -> list[Any]:
        """Send packed commands on ``held`` (the writer's connection by default), read
        their replies (an error reply as its exception).

        A dropped connection is retried on a fresh one: what the first attempt
        stored may be stored twice (delivery is at least once). On a cluster,
        replies that are all MOVED (or all ASK) redirect the whole payload: none
        of it ran.
        """
        out = await self._round_trip_once(payload, replies, held or self._writer_conn)
        if self.cluster is None or not isinstance(out[0], (MovedError, AskError)):
            return out
        for _ in range(3):
            first = out[0]
            if not all(type(r) is type(first) for r in out):
                return out
            if isinstance(first, MovedError):  # (a subclass of AskError)
                await self._moved(first)
            elif isinstance(first, AskError):
                return await self._asking(first, payload, replies)
            else:
                return out
            out = await self._round_trip_once(payload, replies, held or self._writer_conn)
        return out

    async def _round_trip_once(
        self, payload: bytes, replies: int, held: HeldConnection | HeldNodeConnection
    ) -> list[Any]:
        for attempt in range(3):
            conn = await held.get()
            try:
                await conn.send_packed_command(payload)
                return await read_replies(conn, replies)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await held.drop()
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
            except BaseException:
                await held.drop()
                raise
        raise AssertionError("unreachable")

    async def _call_packed(self, payload: bytes, held: HeldConnection | HeldNodeConnection) -> Any:
        """Send one hand-packed command on ``held``; its reply. A dropped connection is
        retried once; on a cluster, MOVED and ASK are followed."""
        dropped = 0
        for _ in range(5):
            conn = await held.get()
            try:
                await conn.send_packed_command(payload)
                return await conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await held.drop()
                dropped += 1
                if dropped == 2:
                    raise
            except MovedError as exc:
                if self.cluster is None:
                    raise
                await self._moved(exc)
            except AskError as exc:
                if self.cluster is None:
                    raise
                (reply,) = await self._asking(exc, payload, 1)
                if isinstance(reply, Exception):
                    raise reply from None
                return reply
            except ResponseError:
                raise
            except BaseException:
                await held.drop()
                raise
        raise AssertionError("unreachable")

    def held_connection(self, key: str | None = None) -> HeldConnection | HeldNodeConnection:
        """A connection for one user's round trips, one at a time: of this transport's
        pool; on a cluster, to the master serving ``key``."""
        if self.cluster is not None:
            if key is None:
                raise ValueError("a held connection on a cluster needs the key it serves")
            return HeldNodeConnection(self.cluster, key_slot(key.encode()))
        return HeldConnection(self.redis.connection_pool)

    async def add_raw(self, channel: str, fields: Mapping[str, str | bytes]) -> str:
        """Append an entry given as raw wire fields (as another program would); returns its id."""
        entry_id: bytes = await execute(
            self.redis, *self._channels.xadd(channel).head(), *fields_args(fields)
        )
        return entry_id.decode()

    async def subscribe(
        self, channel: str, group: str, consumer: str
    ) -> PrioritizedSubscription | ShardedSubscription:
        validate_name("group", group)
        validate_name("consumer", consumer)
        shards = self._channels.options(channel).shards
        if shards > 1:
            sharded = ShardedSubscription(
                [
                    PrioritizedSubscription(
                        self,
                        RedisSubscription(self, channel, group, consumer, shard_name(channel, i)),
                    )
                    for i in range(shards)
                ]
            )
            await sharded.ensure_group()
            return sharded
        sub = PrioritizedSubscription(self, RedisSubscription(self, channel, group, consumer))
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
        writers, self._node_writers = self._node_writers, {}
        for held in writers.values():
            await held.release()
        if self._owns_client:
            if self.cluster is not None:
                await self.cluster.aclose()
            else:
                await self.redis.connection_pool.disconnect()


def _own_cluster_client(client: AsyncRedisCluster) -> AsyncRedisCluster:
    """A cluster client of the transport's own on ``client``'s nodes and settings: raw
    reply callbacks must not change the behaviour of a client the application also uses."""
    kwargs = {k: v for k, v in client.connection_kwargs.items() if k != "response_callbacks"}
    startup = [ClusterNode(n.host, n.port, **kwargs) for n in client.get_nodes()]
    own = AsyncRedisCluster(startup_nodes=startup)
    own.nodes_manager.connection_kwargs.update(kwargs)
    return own


class _NoWriter:
    """The single-server writer's connection slot on a cluster (writers are per node)."""

    async def release(self) -> None:
        return None


_NO_WRITER: Any = _NoWriter()
