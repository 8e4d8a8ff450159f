"""The RabbitMQ transport: topology, confirmed and coalesced sending, subscriptions.

* ``send``: concurrent sends are queued and published together on one
  channel in confirm mode, in the order they were issued; each returns once
  the broker confirmed all of its messages (persistent, on durable queues).
* ``subscribe``: declares the channel's exchange and the group's quorum queue
  (a new group first takes what was sent while no group existed), then a
  :class:`~toolkit.channels.rabbitmq.subscription.RabbitSubscription`.
* ``expect_groups``: the groups a channel will have (the service map's
  consumers): their queues are declared before the first message is sent,
  so a group that starts later still receives everything.
* ``status``: what the channel's queues hold ready, from passive declarations
  (:class:`~toolkit.channels.rabbitmq.status.RabbitStatus`).
* the dead-letter store comes from
  :class:`~toolkit.channels.rabbitmq.dead_letters.RabbitDeadLetters`, scheduled
  messages (the cascade of wait queues) from
  :class:`~toolkit.channels.rabbitmq.schedule.RabbitSchedules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Final

import aiormq
from aiormq.exceptions import ChannelNotFoundEntity
from pamqp import commands as spec

from toolkit.channels.base import MAX_MESSAGE_BYTES, TransportError
from toolkit.channels.rabbitmq.dead_letters import RabbitDeadLetters
from toolkit.channels.rabbitmq.errors import is_transient, unavailable
from toolkit.channels.rabbitmq.link import Link, Outgoing, publish_many
from toolkit.channels.rabbitmq.names import PRIORITIES, ChannelNames, validate_name
from toolkit.channels.rabbitmq.schedule import RabbitSchedules, check_delays
from toolkit.channels.rabbitmq.status import RabbitStatus
from toolkit.channels.rabbitmq.subscription import RabbitSubscription
from toolkit.channels.rabbitmq.wire import (
    original_headers,
    priority_binding,
    priority_of,
    publishable,
    to_amqp,
)
from toolkit.envelope import Envelope
from toolkit.pipe_settings import DEFAULT_PREFIX
from toolkit.scheduling import scheduled_any
from toolkit.wire import F_BODY, F_PRIORITY

__all__ = ["DEFAULT_TIMEOUT", "RabbitTransport"]

_QUORUM: Final[dict[str, Any]] = {"x-queue-type": "quorum"}
_CLASSIC: Final[dict[str, Any]] = {"x-queue-type": "classic"}
#: seconds a broker operation (a declaration, the confirmations of a send) may take
#: before it counts as an outage: a broker that accepts connections but does not
#: answer (recovering queues, out of file handles) surfaces as TransportError
DEFAULT_TIMEOUT: Final = 15.0
#: messages moved per round from the unrouted queue to a new group's queue
_MOVE_BATCH: Final = 500

#: a send waiting to be written: channel, messages, their due times (None: none is
#: scheduled), and its result
Pending = tuple[str, list[tuple[dict[str, Any], bytes]], list[int] | None, "asyncio.Future[None]"]


class RabbitTransport(RabbitDeadLetters, RabbitSchedules, RabbitStatus):
    """Channels on RabbitMQ. Implements Transport, DeadLetterStore, Prioritizes,
    ReportsStatus and the sending side of Schedules (listing and cancelling are
    refused: ``schedule.py``).

    ``RabbitTransport(url)`` does no I/O: it connects on first use, and again
    after the connection was lost. ``await transport.check()`` raises
    :class:`~toolkit.channels.rabbitmq.RabbitUnavailable` with a clear
    message (password hidden) when the broker cannot be reached.
    """

    #: a group's messages of priority 1..9 wait in queues of their own, consumed first
    prioritizes_messages = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        prefetch: int | None = None,
        groups: Mapping[str, Iterable[str]] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        validate_name("prefix", prefix)
        if prefetch is not None and prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.url = url
        self.prefix = prefix
        self.max_message_bytes = max_message_bytes
        self.prefetch = prefetch
        self.timeout = timeout
        self.link = Link(url, timeout)
        self._names: dict[str, ChannelNames] = {}
        self._expected: dict[str, tuple[str, ...]] = {}
        #: channel -> the groups subscribed to through this transport
        self._subscribed: dict[str, set[str]] = {}
        for channel, expected in (groups or {}).items():
            self.expect_groups(channel, expected)
        #: what was declared on the connection of generation ``_declared_on``
        self._declared: set[str] = set()
        self._declared_on = 0
        #: every queue and exchange this transport declared, for :meth:`delete_declared`
        self._made_queues: set[str] = set()
        self._made_exchanges: set[str] = set()
        self._publisher: aiormq.abc.AbstractChannel | None = None
        self._admin: aiormq.abc.AbstractChannel | None = None
        self._outbox: list[Pending] = []
        self._writer: asyncio.Future[None] | None = None

    def names(self, channel: str) -> ChannelNames:
        names = self._names.get(channel)
        if names is None:
            names = self._names[channel] = ChannelNames(channel, self.prefix)
        return names

    def expect_groups(self, channel: str, groups: Iterable[str]) -> None:
        """Declare these groups' queues before the first send to ``channel``, so that
        each receives every message even if its consumers start later."""
        names = self.names(channel)
        for group in groups:
            names.queue(group)
        self._expected[channel] = tuple(sorted({*self._expected.get(channel, ()), *groups}))

    def known_groups(self, channel: str) -> list[str]:
        """The groups of ``channel`` expected or subscribed to here (AMQP cannot list queues)."""
        return sorted({*self._expected.get(channel, ()), *self._subscribed.get(channel, ())})

    async def check(self) -> None:
        """Raise :class:`~toolkit.channels.rabbitmq.RabbitUnavailable` unless the broker
        accepts a connection and a channel."""
        channel = await self.link.channel()
        await channel.close()

    # -- channels of the connection -----------------------------------------------------

    def _fresh(self) -> set[str]:
        """The names declared on the current connection (forgotten when it changes)."""
        if self._declared_on != self.link.generation:
            self._declared = set()
            self._declared_on = self.link.generation
        return self._declared

    async def publishing_channel(self) -> aiormq.abc.AbstractChannel:
        channel = self._publisher
        if channel is None or channel.is_closed:
            channel = self._publisher = await self.link.channel(confirms=True)
        return channel

    async def admin_channel(self) -> aiormq.abc.AbstractChannel:
        """A channel for declarations; reopened after a channel error closed it."""
        channel = self._admin
        if channel is None or channel.is_closed:
            channel = self._admin = await self.link.channel()
        return channel

    async def _confirmed(self, confirmations: list[asyncio.Future[Any]]) -> list[Any]:
        """The broker's replies to a batch; a broker that does not answer in time is an
        outage (and the channel is dropped: late replies must not settle anything)."""
        try:
            return await asyncio.wait_for(
                asyncio.gather(*confirmations, return_exceptions=True), self.timeout
            )
        except TimeoutError:
            self._publisher = None
            self.link.reset()
            raise TimeoutError(f"no publisher confirmation within {self.timeout:g}s") from None

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """Declarations take at most ``timeout``; a late one drops the admin channel."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            self._admin = None
            self.link.reset()
            raise TimeoutError(f"no answer from RabbitMQ within {self.timeout:g}s") from None
        except Exception as exc:
            if is_transient(exc):
                self._admin = None  # aiormq may leave it open but unusable
            raise

    async def publish(self, messages: Sequence[Outgoing], what: str) -> None:
        """Publish and wait for the broker's confirmations; raise when any is missing."""
        try:
            async with asyncio.timeout(self.timeout * 2):
                channel = await self.publishing_channel()
                confirmations = await publish_many(channel, messages)
                replies = await self._confirmed(confirmations)
        except Exception as exc:
            if is_transient(exc):
                self._publisher = None
                raise unavailable(what, exc) from exc
            raise
        for reply in replies:
            if isinstance(reply, BaseException):
                raise self._not_confirmed(what, reply)

    @staticmethod
    def _not_confirmed(what: str, exc: BaseException) -> BaseException:
        if is_transient(exc) or isinstance(exc, aiormq.exceptions.DeliveryError):
            # Not confirmed: maybe not stored. Sending again may store it twice.
            return unavailable(what, exc)
        return exc

    # -- topology -----------------------------------------------------------------------

    async def ensure_channel(self, names: ChannelNames) -> None:
        """Declare the channel's exchange and its unrouted exchange and queue."""
        declared = self._fresh()
        if names.exchange in declared:
            return
        try:
            async with self._deadline():
                admin = await self.admin_channel()
                await admin.exchange_declare(names.unrouted, exchange_type="fanout", durable=True)
                await admin.queue_declare(names.unrouted, durable=True, arguments=_QUORUM)
                await admin.queue_bind(names.unrouted, names.unrouted)
                await admin.exchange_declare(
                    names.exchange,
                    exchange_type="fanout",
                    durable=True,
                    arguments={"alternate-exchange": names.unrouted},
                )
                await admin.exchange_declare(
                    names.prioritized,
                    exchange_type="headers",
                    durable=True,
                    arguments={"alternate-exchange": names.unrouted},
                )
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"declaring channel {names.channel!r}", exc) from exc
            raise
        self._made_exchanges.update((names.unrouted, names.exchange, names.prioritized))
        self._made_queues.add(names.unrouted)
        declared.add(names.exchange)
        for group in self._expected.get(names.channel, ()):
            await self.declare_group(names, group)

    async def declare_group(self, names: ChannelNames, group: str) -> bool:
        """Declare ``group``'s queues on the channel; True when it was created now.

        A group has a queue per priority: its queue (priority 0) bound to the
        channel's exchange, and one for each of 1..9 bound to the channel's
        priority exchange and the group's own (retries) by the header. New
        queues first receive what waits in the unrouted queue (sent while the
        channel had no group), then are bound, then receive what reached the
        unrouted queue meanwhile.
        """
        queue = names.queue(group)
        declared = self._fresh()
        if queue in declared:
            return False
        await self.ensure_channel(names)
        mine = names.group_prioritized(group)
        try:
            created = await self.queue_length(queue) is None
            async with self._deadline():
                admin = await self.admin_channel()
                for priority in PRIORITIES:
                    await admin.queue_declare(
                        names.priority_queue(group, priority), durable=True, arguments=_QUORUM
                    )
                await admin.exchange_declare(mine, exchange_type="headers", durable=True)
            if created:
                await self._move(names.unrouted, names, group)
            async with self._deadline():
                admin = await self.admin_channel()
                await admin.queue_bind(queue, names.exchange)
                for priority in PRIORITIES[1:]:
                    bound = names.priority_queue(group, priority)
                    binding = priority_binding(priority)
                    await admin.queue_bind(bound, names.prioritized, arguments=binding)
                    await admin.queue_bind(bound, mine, arguments=binding)
            if created:
                await self._move(names.unrouted, names, group)
        except TransportError:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"declaring the queue of group {group!r}", exc) from exc
            raise
        self._made_queues.update(names.priority_queue(group, p) for p in PRIORITIES)
        self._made_exchanges.add(mine)
        declared.add(queue)
        return created

    async def ensure_dead(self, names: ChannelNames) -> None:
        """Declare the channel's dead-letter queue (on first need: a classic queue holds
        file handles on the broker, so channels that never dead-letter have none)."""
        await self.ensure_channel(names)
        await self.declare_queue(names.dead, _CLASSIC)

    async def declare_queue(self, queue: str, arguments: dict[str, Any]) -> None:
        """Declare a queue once per connection (dead letters, a group's retry queues)."""
        declared = self._fresh()
        if queue in declared:
            return
        try:
            async with self._deadline():
                admin = await self.admin_channel()
                await admin.queue_declare(queue, durable=True, arguments=arguments)
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"declaring queue {queue!r}", exc) from exc
            raise
        self._made_queues.add(queue)
        declared.add(queue)

    async def queue_length(self, queue: str) -> int | None:
        """Messages ready in ``queue``; None when there is no such queue."""
        try:
            async with self._deadline():
                admin = await self.admin_channel()
                ok = await admin.queue_declare(queue, passive=True)
        except ChannelNotFoundEntity:
            return None  # the channel is closed by the 404; reopened on next use
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"looking up queue {queue!r}", exc) from exc
            raise
        assert ok is not None
        return int(ok.message_count or 0)

    async def _move(self, source: str, names: ChannelNames, group: str) -> int:
        """Move what waits in ``source`` to ``group``'s queue of each message's priority:
        published (confirmed), then acknowledged; a crash in between leaves a copy in
        both (never in neither)."""
        moved = 0
        channel = await self.link.channel()
        try:
            while True:
                batch: list[Any] = []
                while len(batch) < _MOVE_BATCH:
                    message = await channel.basic_get(source, no_ack=False)
                    if isinstance(message.delivery, spec.Basic.GetEmpty):
                        break
                    batch.append(message)
                if not batch:
                    return moved
                outgoing: list[Outgoing] = []
                for m in batch:
                    headers = original_headers(m.header.properties.headers)
                    target = names.priority_queue(group, priority_of(headers))
                    outgoing.append(("", target, headers, m.body, None))
                await self.publish(outgoing, f"moving unrouted messages to group {group!r}")
                await channel.basic_ack(batch[-1].delivery.delivery_tag, multiple=True)
                moved += len(batch)
        finally:
            if not channel.is_closed:
                await channel.close()

    # -- Transport ----------------------------------------------------------------------

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Publish in order; returns once the broker confirmed every message.

        Sends issued concurrently are published together, in the order they
        were issued, and each is settled by its own messages' confirmations.
        A send that fails with :class:`~toolkit.channels.base.TransportError`
        may have stored some of its messages (at least once: sending again
        may store them twice).
        """
        if not envelopes:
            return
        dues: list[int] | None = None
        if scheduled_any(envelopes):
            dues = [envelope.headers.deliver_at_ms for envelope in envelopes]
            check_delays(channel, dues, time.time_ns() // 1_000_000)
        messages = [to_amqp(envelope) for envelope in envelopes]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, messages, dues, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        await done

    async def _write(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                async with asyncio.timeout(self.timeout * 2):
                    outgoing: list[Outgoing] = []
                    for channel, messages, dues, _ in batch:
                        names = self.names(channel)
                        await self.ensure_channel(names)
                        if dues is not None:
                            outgoing.extend(await self.scheduled_outgoing(names, messages, dues))
                            continue
                        exchange, prioritized = names.exchange, names.prioritized
                        outgoing.extend(
                            (prioritized if F_PRIORITY in h else exchange, "", h, b, None)
                            for h, b in messages
                        )
                    publisher = await self.publishing_channel()
                    confirmations = await publish_many(publisher, outgoing)
                    replies = await self._confirmed(confirmations)
            except Exception as exc:
                error: BaseException = exc
                if is_transient(exc):
                    self._publisher = None
                    error = unavailable("sending", exc)
                for _, _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            at = 0
            for channel, messages, _, done in batch:
                mine = replies[at : at + len(messages)]
                at += len(messages)
                if done.done():
                    continue
                failure = next((r for r in mine if isinstance(r, BaseException)), None)
                if failure is None:
                    done.set_result(None)
                else:
                    done.set_exception(self._not_confirmed(f"sending to {channel!r}", failure))

    async def add_raw(
        self,
        channel: str,
        fields: Mapping[str, str | bytes],
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish a message written by hand, as another program would: every field
        but ``body`` as a header (plus ``headers`` as they are), ``body`` as the body."""
        names = self.names(channel)
        await self.ensure_channel(names)
        table: dict[str, Any] = {k: publishable(v) for k, v in fields.items() if k != F_BODY}
        table.update(headers or {})
        body = fields.get(F_BODY, b"")
        await self.publish(
            [(names.exchange, "", table, body.encode() if isinstance(body, str) else body, None)],
            f"sending to {channel!r}",
        )

    async def subscribe(self, channel: str, group: str, consumer: str) -> RabbitSubscription:
        validate_name("consumer", consumer)
        sub = RabbitSubscription(self, self.names(channel), group, consumer)
        await sub.open()
        self._subscribed.setdefault(channel, set()).add(group)
        return sub

    async def delete_declared(self) -> None:
        """Delete every exchange and queue this transport declared, messages and all
        (tests clean up with it: each queue holds resources on the broker)."""
        admin = await self.link.channel()
        try:
            for queue in sorted(self._made_queues):
                await admin.queue_delete(queue)
            for exchange in sorted(self._made_exchanges):
                await admin.exchange_delete(exchange)
        finally:
            if not admin.is_closed:
                await admin.close()
        self._made_queues.clear()
        self._made_exchanges.clear()
        self._declared.clear()

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer], timeout=5)
        await self.link.close()
