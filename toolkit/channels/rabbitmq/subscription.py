"""One consumer in one group on one channel: receiving and settling.

* ``receive``: the group's queues, one per priority (0..9), are consumed
  (``basic.consume`` each, prefetch ``max_count`` unless the transport sets
  one) into a buffer per priority; ``receive`` hands out up to ``max_count``,
  highest priority first (each buffer in its queue's order), waiting at most
  ``timeout`` for the first. The delivery count is the quorum queue's
  ``x-delivery-count`` + 1, plus the deliveries before a retry.
* ``ack``: one ``basic.ack`` with ``multiple`` when the batch is every
  unsettled message up to its last (neither held nor waiting in a buffer),
  else one per message.
* ``retry_later``: a copy goes (confirmed) to the group's wait queue for the
  delay rounded up to :data:`~toolkit.channels.rabbitmq.names.RETRY_LADDER_MS`,
  then the original is acknowledged; the wait queue's message TTL
  dead-letters it back to the group's queue when due (a message of priority
  1..9 waits in the ``.p`` wait queue of its step, which dead-letters it to the
  group's priority exchange: back into its priority's queue). A crash in
  between leaves both (delivered again sooner), never neither.
* ``reject``: the dead letter is published (confirmed) to the channel's
  dead-letter queue, then the original is acknowledged.

Messages that cannot be read as envelopes are dead-lettered on receipt. A
lost connection surfaces as :class:`~toolkit.channels.base.TransportError`;
the next call opens a new one and consumes again. What was delivered on the
lost connection is requeued by the broker, so settling it is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import aiormq

from toolkit.channels.base import Delivery, too_large
from toolkit.channels.rabbitmq.errors import is_transient, unavailable
from toolkit.channels.rabbitmq.names import (
    PRIORITIES,
    ChannelNames,
    retry_bucket_ms,
)
from toolkit.channels.rabbitmq.status import probe
from toolkit.channels.rabbitmq.wire import (
    H_PRIOR,
    dead_letter_headers,
    fields_of,
    original_headers,
)
from toolkit.envelope import Envelope, WireError

if TYPE_CHECKING:
    from toolkit.channels.rabbitmq.transport import RabbitTransport

__all__ = ["Held", "RabbitSubscription", "new_dead_letter_id"]

log = logging.getLogger("toolkit.rabbitmq")

_DELIVERY_COUNT: Final = "x-delivery-count"
#: after the first message of a batch, wait this long for the next, at most this often
_LINGER: Final = 0.005
_LINGER_ROUNDS: Final = 40
#: the prefetch a subscription consumes with until its first ``receive`` says the batch
_FIRST_PREFETCH: Final = 100


def new_dead_letter_id() -> str:
    """Sortable by time, unique: ``<Unix ms>-<12 hex digits>``."""
    return f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"


class Held:
    """A delivery's handle: the connection generation, the delivery tag, the message."""

    __slots__ = ("generation", "message", "tag")

    def __init__(self, generation: int, tag: int, message: Any) -> None:
        self.generation = generation
        self.tag = tag
        self.message = message


def _count(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


class RabbitSubscription:
    """One consumer in one group on one channel. Implements Subscription, DelayedRetry
    and SettlesOnReceipt (no leases: a delivery stays with its consumer until its
    AMQP channel closes), and hands out higher priorities first."""

    def __init__(
        self, transport: RabbitTransport, names: ChannelNames, group: str, consumer: str
    ) -> None:
        self._transport = transport
        self._link = transport.link
        self.names = names
        self.channel = names.channel
        self.group = group
        self.consumer = consumer
        self.queue = names.queue(group)
        #: the group's queue of each priority (index: the priority)
        self.queues = [names.priority_queue(group, priority) for priority in PRIORITIES]
        self._max_bytes = transport.max_message_bytes
        self._amqp: aiormq.abc.AbstractChannel | None = None
        self._generation = 0
        #: what the broker pushed and ``receive`` has not handed out, per priority
        self._buffers: list[deque[Any]] = [deque() for _ in PRIORITIES]
        #: consumer tag -> the priority of the queue it consumes
        self._tags: dict[str, int] = {}
        self._wake = asyncio.Event()
        #: delivery tags handed out and not yet settled
        self._held: set[int] = set()
        self._closed = False
        self._dead_on_receipt = 0
        self._retry_arguments: dict[tuple[int, bool], dict[str, Any]] = {}
        #: the prefetch consumed with; 0: not consuming yet
        self._prefetch = 0

    # -- the AMQP channel ---------------------------------------------------------------

    async def open(self) -> None:
        """Declare what the group needs and open a new AMQP channel for it. Consuming
        starts with the first ``receive``, whose ``max_count`` sets the prefetch."""
        async with asyncio.timeout(self._transport.timeout * 2):
            await self._transport.declare_group(self.names, self.group)
            amqp = await self._link.channel()
        self._clear_buffers()
        self._held.clear()
        self._amqp = amqp
        self._prefetch = 0
        self._generation = self._link.generation
        amqp.closing.add_done_callback(lambda _: self._wake.set())
        # Consume at once (a batch of the usual size), so what waits in the queue is
        # on its way before the first receive; that receive adjusts the prefetch.
        await self._consume(_FIRST_PREFETCH)

    async def _consume(self, max_count: int) -> None:
        """Consume with a prefetch of ``max_count`` (or the transport's): a consumer holds
        no more than it asks for, and the rest stays in the queue for the group's others."""
        amqp = self._amqp
        assert amqp is not None
        prefetch = self._transport.prefetch or max_count
        if prefetch == self._prefetch:
            return
        async with asyncio.timeout(self._transport.timeout):
            # Per consumer (quorum queues have no per-channel prefetch): a consumer may
            # hold a batch of each priority whose queue has a backlog.
            await amqp.basic_qos(prefetch_count=prefetch)
            if not self._prefetch:
                base = f"{self.consumer}-{uuid.uuid4().hex[:8]}"
                self._tags = {f"{base}-p{priority}": priority for priority in PRIORITIES}
                for tag, priority in self._tags.items():
                    await amqp.basic_consume(
                        self.queues[priority], self._on_message, consumer_tag=tag
                    )
        self._prefetch = prefetch

    async def _on_message(self, message: Any) -> None:
        if message.channel is self._amqp:
            self._buffers[self._tags.get(message.delivery.consumer_tag, 0)].append(message)
            self._wake.set()

    def _buffered(self) -> int:
        return sum(len(buffer) for buffer in self._buffers)

    def _clear_buffers(self) -> None:
        for buffer in self._buffers:
            buffer.clear()

    async def _ready(self) -> bool:
        """Whether any of the group's queues has messages ready."""
        for queue in self.queues:
            if await self._transport.queue_length(queue):
                return True
        return False

    def _usable(self) -> bool:
        amqp = self._amqp
        return amqp is not None and not amqp.is_closed and self._generation == self._link.generation

    def _current(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` is held unsettled on the AMQP channel still open (else it
        was settled already, or the broker requeued it and it comes again)."""
        held: Held = delivery.delivery_id
        return held.generation == self._generation and held.tag in self._held and self._usable()

    # -- receiving ---------------------------------------------------------------------

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        if self._closed:
            return []
        try:
            if not self._usable():
                await self.open()
            if self._prefetch != (self._transport.prefetch or max_count):
                await self._consume(max_count)
            if not self._buffered() and timeout <= 0 and await self._ready():
                # Asked not to wait, but messages are ready: they are on their way here
                # (the broker pushes), so "nothing to receive" would be untrue.
                timeout = self._transport.timeout
            if not self._buffered() and timeout > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                # The broker pushes a burst message by message: take what follows the
                # first at once, rather than leave it held here while others could work.
                lingered = 0
                while 0 < self._buffered() < max_count and lingered < _LINGER_ROUNDS:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), _LINGER)
                    except TimeoutError:
                        break
                    lingered += 1
            if not self._usable():
                raise unavailable(
                    f"receiving on {self.channel!r}", ConnectionError("the connection was lost")
                )
            out: list[Delivery] = []
            unreadable: list[tuple[Any, str]] = []
            generation = self._generation
            for buffer in reversed(self._buffers):  # the highest priority first
                while buffer and len(out) < max_count:
                    message = buffer.popleft()
                    tag = message.delivery.delivery_tag
                    delivery = self._read(message, tag, generation, unreadable)
                    if delivery is not None:
                        self._held.add(tag)
                        out.append(delivery)
            if unreadable:
                await self._dead_letter_unreadable(unreadable)
            return out
        except Exception as exc:
            if is_transient(exc):
                self._drop()
                raise unavailable(f"receiving on {self.channel!r}", exc) from exc
            raise

    def _drop(self) -> None:
        """Give up the AMQP channel after an outage (aiormq may leave it open but
        unusable): the next ``receive`` opens a new one. Its deliveries come again."""
        amqp, self._amqp = self._amqp, None
        self._prefetch = 0
        if amqp is not None and not amqp.is_closed:
            task = asyncio.ensure_future(amqp.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _read(
        self, message: Any, tag: int, generation: int, unreadable: list[tuple[Any, str]]
    ) -> Delivery | None:
        headers = message.header.properties.headers or {}
        body = message.body
        try:
            if len(body) > self._max_bytes:
                unreadable.append((message, too_large(len(body), self._max_bytes)))
                return None
            envelope = Envelope.from_fields(fields_of(headers, body))
        except WireError as exc:
            unreadable.append((message, f"invalid envelope: {exc}"))
            return None
        except Exception as exc:
            # Never a crashed consumer for one message: whatever the parser met is its fault.
            unreadable.append((message, f"invalid envelope: {type(exc).__name__}: {exc}"))
            return None
        count = 1 + _count(headers.get(_DELIVERY_COUNT, 0)) + _count(headers.get(H_PRIOR, 0))
        return Delivery(envelope, self.channel, Held(generation, tag, message), count)

    async def _dead_letter_unreadable(self, unreadable: list[tuple[Any, str]]) -> None:
        amqp = self._amqp
        assert amqp is not None
        outgoing = []
        for message, reason in unreadable:
            headers = message.header.properties.headers or {}
            log.warning(
                "dead-lettered message %s on %s: %s",
                headers.get("message_id", "?"),
                self.channel,
                reason,
            )
            count = 1 + _count(headers.get(_DELIVERY_COUNT, 0)) + _count(headers.get(H_PRIOR, 0))
            outgoing.append(self._dead_letter(message, reason, {}, count))
        await self._transport.ensure_dead(self.names)
        await self._transport.publish(outgoing, f"dead-lettering on {self.channel!r}")
        for message, _ in unreadable:
            await amqp.basic_ack(message.delivery.delivery_tag, wait=False)
        self._dead_on_receipt += len(unreadable)

    def settled_on_receipt(self) -> tuple[int, int]:
        """Messages ``receive`` dead-lettered by itself since the last call (none skipped)."""
        dead, self._dead_on_receipt = self._dead_on_receipt, 0
        return dead, 0

    def _dead_letter(
        self, message: Any, reason: str, details: Mapping[str, str], attempts: int
    ) -> tuple[str, str, dict[str, Any], bytes, str | None]:
        toolkit = {
            "reason": reason,
            "group": self.group,
            "channel": self.channel,
            "consumer": self.consumer,
            "at": str(int(time.time() * 1000)),
            "attempts": str(attempts),
        }
        toolkit.update(details)
        headers = dead_letter_headers(toolkit, original_headers(message.header.properties.headers))
        return ("", self.names.dead, headers, message.body, new_dead_letter_id())

    # -- settling ----------------------------------------------------------------------

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        if self._closed:
            return  # closing handed back whatever was not settled
        generation = self._generation
        held = self._held
        # Only what this channel holds unsettled: a tag acknowledged twice would make
        # the broker close the channel.
        tags = [
            d.delivery_id.tag
            for d in deliveries
            if d.delivery_id.generation == generation and d.delivery_id.tag in held
        ]
        if not tags:
            return
        for tag in tags:
            held.discard(tag)
        amqp = self._amqp
        if amqp is None or not self._usable():
            raise unavailable(
                f"acknowledging on {self.channel!r}", ConnectionError("the connection was lost")
            )
        top = max(tags)
        try:
            if (not held or min(held) > top) and all(
                not buffer or buffer[0].delivery.delivery_tag > top for buffer in self._buffers
            ):
                # Every message delivered up to ``top`` is settled (none held, none
                # waiting in a buffer of a lower priority): one ack for all.
                await amqp.basic_ack(top, multiple=True, wait=False)
            else:
                for tag in tags:
                    await amqp.basic_ack(tag, wait=False)
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"acknowledging on {self.channel!r}", exc) from exc
            raise

    async def _settle_one(self, delivery: Delivery, what: str) -> None:
        """Acknowledge one delivery."""
        held: Held = delivery.delivery_id
        amqp = self._amqp
        assert amqp is not None
        try:
            await amqp.basic_ack(held.tag, wait=False)
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"{what} on {self.channel!r}", exc) from exc
            raise
        self._held.discard(held.tag)

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        if not self._current(delivery):
            return  # requeued with its connection: it comes again
        details = dict(details or {})
        attempts = int(details.pop("attempts", delivery.delivery_count))
        held: Held = delivery.delivery_id
        await self._transport.ensure_dead(self.names)
        await self._transport.publish(
            [self._dead_letter(held.message, reason, details, attempts)],
            f"dead-lettering on {self.channel!r}",
        )
        await self._settle_one(delivery, "dead-lettering")

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        if not self._current(delivery):
            return  # requeued with its connection: it comes again
        step = retry_bucket_ms(delay)
        prioritized = delivery.envelope.headers.priority > 0
        queue = self.names.retry_queue(self.group, step, prioritized=prioritized)
        await self._transport.declare_queue(queue, self._retry_queue_arguments(step, prioritized))
        held: Held = delivery.delivery_id
        headers = original_headers(held.message.header.properties.headers)
        headers[H_PRIOR] = delivery.delivery_count
        await self._transport.publish(
            [("", queue, headers, held.message.body, None)],
            f"scheduling a retry on {self.channel!r}",
        )
        await self._settle_one(delivery, "scheduling a retry")

    def _retry_queue_arguments(self, step: int, prioritized: bool) -> dict[str, Any]:
        arguments = self._retry_arguments.get((step, prioritized))
        if arguments is None:
            # Back into the group's queue, or (priorities 1..9) through the group's
            # priority exchange into the queue of the message's priority header.
            back: dict[str, Any] = (
                {"x-dead-letter-exchange": self.names.group_prioritized(self.group)}
                if prioritized
                else {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.queue}
            )
            arguments = self._retry_arguments[(step, prioritized)] = {
                "x-queue-type": "quorum",
                "x-message-ttl": step,
                **back,
                # Quorum queues dead-letter at least once with this (3.10+): a
                # message leaves the wait queue only once the group's queue has it.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        return arguments

    async def retries_waiting(self) -> int:
        """Messages of the group in its wait queues, whichever consumer put them there."""
        try:
            async with asyncio.timeout(self._transport.timeout):
                found = await probe(self._transport.link, self.names.retry_queues(self.group))
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"counting retries on {self.channel!r}", exc) from exc
            raise
        return sum(counts[0] for counts in found.values() if counts is not None)

    async def close(self) -> None:
        """Stop consuming; what was delivered and not settled is requeued by the broker."""
        if self._closed:
            return
        self._closed = True
        amqp, self._amqp = self._amqp, None
        self._clear_buffers()
        if amqp is not None and not amqp.is_closed:
            try:
                await amqp.close()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.debug(
                    "could not close the channel of %s on %s: %s", self.group, self.channel, exc
                )
