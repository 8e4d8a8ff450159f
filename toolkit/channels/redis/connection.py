"""Redis connections from a URL.

``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) and
``unix:///path/to/redis.sock[?db=0]``; ACL user and password in the URL.
Without a URL, ``REDIS_URL`` from the environment, else
``redis://localhost:6379/0``.

A Redis Cluster: ``redis+cluster://[user:password@]host:port[,host:port...]``
(``rediss+cluster://`` with TLS), or a ``redis://`` URL with ``?cluster=true``
(see :func:`toolkit.pipe_settings.cluster_nodes`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import redis
import redis.asyncio
import redis.cluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

from toolkit.channels.redis.errors import RedisUnavailable
from toolkit.pipe_settings import cluster_nodes, redact, without_toolkit_options

__all__ = [
    "DEFAULT_URL",
    "RedisUnavailable",
    "async_client",
    "check_async",
    "check_sync",
    "cluster_client",
    "is_cluster",
    "read_replies",
    "redact",
    "resolve_url",
    "sync_client",
    "sync_cluster_client",
]

DEFAULT_URL: Final = "redis://localhost:6379/0"

# A command that hits a dropped connection is retried a few times over about
# a second (this is what makes a restarted server transparent to publishers);
# longer outages surface as TransportError and the consumer backs off itself.
_RETRIES: Final = 3
_BACKOFF_CAP: Final = 0.5
_BACKOFF_BASE: Final = 0.05
#: longer than the longest XREADGROUP BLOCK the transport issues
_SOCKET_TIMEOUT: Final = 15.0
_CONNECT_TIMEOUT: Final = 5.0
_CLUSTER_SOCKET_TIMEOUT: Final = 7.0


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get("REDIS_URL") or DEFAULT_URL


def _options(extra: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": _SOCKET_TIMEOUT,
        "socket_connect_timeout": _CONNECT_TIMEOUT,
    }
    options.update(extra)
    return options


def async_client(url: str | None = None, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client (connection pool) for ``url``; options in the URL win over ``options``."""
    options = _options(options)
    options.setdefault(
        "retry", AsyncRetry(ExponentialWithJitterBackoff(_BACKOFF_CAP, _BACKOFF_BASE), _RETRIES)
    )
    client = redis.asyncio.from_url(without_toolkit_options(resolve_url(url)), **options)
    pool = client.connection_pool
    pool.connection_class = _timed_writes(pool.connection_class)
    return client


_TIMED: dict[type[Any], type[Any]] = {}


def _timed_writes(base: type[Any]) -> type[Any]:
    """``base`` (TCP, TLS or Unix socket connection) with writes bounded by ``asyncio.timeout``.

    With ``socket_timeout`` set, redis-py wraps every write in ``asyncio.wait_for``:
    a new task and an extra turn of the event loop per command, which costs a
    lone publish about as much as the rest of its round trip. The same bound
    without a task: the write runs with the timeout lifted (connecting, if it
    must, keeps ``socket_connect_timeout``), inside ``asyncio.timeout``. Reads keep
    redis-py's own timeout.
    """
    made = _TIMED.get(base)
    if made is None:

        class TimedWrites(base):  # type: ignore[misc]
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                timeout: float | None = self.socket_timeout  # type: ignore[has-type]
                if not timeout:
                    await super().send_packed_command(command, check_health)
                    return
                self.socket_timeout = None
                try:
                    async with asyncio.timeout(timeout):
                        await super().send_packed_command(command, check_health)
                except TimeoutError:
                    await self.disconnect(nowait=True)
                    raise redis.TimeoutError("Timeout writing to socket") from None
                finally:
                    self.socket_timeout = timeout

        TimedWrites.__name__ = TimedWrites.__qualname__ = f"TimedWrites{base.__name__}"
        made = _TIMED[base] = TimedWrites
    return made


def is_cluster(url: str) -> bool:
    return cluster_nodes(url) is not None


def _cluster_options(
    url: str, extra: dict[str, Any]
) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    nodes = cluster_nodes(url)
    if nodes is None:
        raise ValueError(f"{redact(url)} is not a Redis Cluster URL")
    parts = urlsplit(url)
    credentials, at, _ = parts.netloc.rpartition("@")
    options = _options(extra)
    if at:
        user, _, password = credentials.partition(":")
        if user:
            options["username"] = user
        if password:
            options["password"] = password
    if parts.scheme.lower().startswith("rediss"):
        options["ssl"] = True
    for key, value in parse_qsl(parts.query):
        if key in ("socket_timeout", "socket_connect_timeout"):
            options[key] = float(value)
    return nodes, options


def cluster_client(url: str, **options: Any) -> AsyncRedisCluster:
    """An asyncio Redis Cluster client: one slot map, one connection pool per node."""
    # Shorter than a single server's: a master that hangs is given up on (and the
    # slot map asked again) sooner; still longer than the longest XREADGROUP BLOCK.
    options.setdefault("socket_timeout", _CLUSTER_SOCKET_TIMEOUT)
    nodes, kwargs = _cluster_options(url, options)
    client = AsyncRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes], **kwargs
    )
    manager = client.nodes_manager
    base = manager.connection_kwargs.get("connection_class", redis.asyncio.Connection)
    manager.connection_kwargs["connection_class"] = _timed_writes(base)
    return client


def sync_cluster_client(url: str, **options: Any) -> redis.cluster.RedisCluster:
    nodes, kwargs = _cluster_options(url, options)
    return redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in nodes],  # type: ignore[no-untyped-call]
        **kwargs,
    )


def sync_client(url: str | None = None, **options: Any) -> redis.Redis:
    """A synchronous client (connection pool) for ``url``."""
    options = _options(options)
    options.setdefault(
        "retry", Retry(ExponentialWithJitterBackoff(_BACKOFF_CAP, _BACKOFF_BASE), _RETRIES)
    )
    return redis.Redis.from_url(without_toolkit_options(resolve_url(url)), **options)


def _unreachable(url: str, exc: BaseException) -> RedisUnavailable:
    return RedisUnavailable(
        f"cannot reach Redis at {redact(url)}: {exc} "
        "(set REDIS_URL or pass --url; is the server running?)"
    )


#: what ``check`` reads as "cannot reach": a cluster that cannot be mapped too
_UNREACHABLE: Final = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    redis.exceptions.RedisClusterException,
    redis.exceptions.ClusterError,
    redis.exceptions.ClusterDownError,
)


async def check_async(client: redis.asyncio.Redis | AsyncRedisCluster, url: str) -> None:
    """PING; raises :class:`RedisUnavailable` with the (redacted) URL when that fails."""
    try:
        await client.ping()
    except _UNREACHABLE as exc:
        raise _unreachable(url, exc) from exc


def check_sync(client: redis.Redis | redis.cluster.RedisCluster, url: str) -> None:
    try:
        client.ping()
    except _UNREACHABLE as exc:
        raise _unreachable(url, exc) from exc


class HeldConnection:
    """One connection of a pool, kept by one user between round trips: the transport's
    writer, or one subscription (whose methods never run concurrently).

    Checking a connection out of redis-py's pool and back in costs about as much
    CPU as the round trip itself; one user sending one command at a time gains
    nothing from it. A connection that failed is disconnected and given back
    (:meth:`drop`); the next :meth:`get` takes a fresh one.

    ``unread``: replies its user has yet to read on the connection in hand (commands
    written without waiting, read with the next round trip). A connection given back
    with replies unread is disconnected first (another user would read them), and
    ``unread`` goes back to 0 whenever the connection in hand goes: its user can tell
    that what it wrote there must be written again.
    """

    __slots__ = ("_conn", "_pool", "unread")

    def __init__(self, pool: redis.asyncio.ConnectionPool) -> None:
        self._pool = pool
        self._conn: Any = None
        self.unread = 0

    async def get(self) -> Any:
        if self._conn is None:
            self._conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        return self._conn

    async def drop(self) -> None:
        """Disconnect the connection in hand (after an error or a cancellation) and give it back."""
        conn, self._conn = self._conn, None
        self.unread = 0
        if conn is not None:
            try:
                await conn.disconnect()
            finally:
                await self._pool.release(conn)

    async def release(self) -> None:
        """Give the connection back to the pool, as it is (dropped, with replies unread)."""
        if self.unread:
            await self.drop()
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


class HeldNodeConnection:
    """:class:`HeldConnection` on a Redis Cluster: a connection to the master serving
    one slot (a channel's), as the client's shared slot map says.

    The map is read at each :meth:`get` that needs a connection: after a MOVED
    (the map updated) or a failure (:meth:`drop`), the next one goes to the
    slot's master as of then. ``unread`` as for :class:`HeldConnection`.
    """

    __slots__ = ("_client", "_conn", "_node", "_remap", "slot", "unread")

    def __init__(self, client: AsyncRedisCluster, slot: int) -> None:
        self._client = client
        self.slot = slot
        self._node: ClusterNode | None = None
        self._conn: Any = None
        self._remap = False
        self.unread = 0

    async def get(self) -> Any:
        conn = self._conn
        if conn is not None:
            # The usual case, without a coroutine: the slot is still where it was.
            served = self._client.nodes_manager.slots_cache.get(self.slot)
            if served and served[0] is self._node:
                return conn
        if self._remap:
            # The node failed: ask the cluster who serves the slot now (a replica
            # promoted by a failover) rather than knocking at the same door.
            self._remap = False
            await self._client.nodes_manager.initialize()
        if self._conn is None:
            node = await node_of_slot(self._client, self.slot)
            self._conn = node.acquire_connection()
            self._node = node
        elif self._node is not await node_of_slot(self._client, self.slot):
            # The slot moved (MOVED, failover) since: follow it.
            await self.release()
            return await self.get()
        return self._conn

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        node, self._node = self._node, None
        self._remap = True
        self.unread = 0
        if conn is not None and node is not None:
            try:
                await conn.disconnect()
            finally:
                node.release(conn)

    async def release(self) -> None:
        if self.unread:
            await self.drop()
            return
        conn, self._conn = self._conn, None
        node, self._node = self._node, None
        if conn is not None and node is not None:
            node.release(conn)


async def node_of_slot(client: AsyncRedisCluster, slot: int) -> ClusterNode:
    """The master serving ``slot``, as the client's slot map says (mapped on first use)."""
    manager = client.nodes_manager
    served = manager.slots_cache.get(slot)
    if served:
        return served[0]
    if not manager.slots_cache:
        await client.initialize()
    node: ClusterNode = manager.get_node_from_slot(slot)
    return node


async def read_replies(conn: Any, replies: int) -> list[Any]:
    """``replies`` replies from ``conn``, an error reply as its exception."""
    out: list[Any] = []
    for _ in range(replies):
        try:
            out.append(await conn.read_response())
        except ResponseError as exc:
            out.append(exc)
    return out
