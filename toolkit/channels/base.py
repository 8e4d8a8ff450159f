"""The channel interface every transport implements.

A *transport* (the in-memory broker, one Redis connection) holds named
channels. Publishers send batches of envelopes to a channel by name.
Consumers open a *subscription* to a channel as a consumer group (the
consuming service's name) and a consumer (one process or task inside it).

Promises every transport keeps, checked by ``tests/channels/conformance.py``:

* Delivery is at least once. A received message stays pending in its group
  until it is acknowledged or rejected; a pending message may be delivered
  again (to this or another consumer of the group) after a crash.
* Each group sees every message sent to the channel after the group was
  created, and a group created later still starts at the beginning of the
  channel (nothing sent before the first consumer started is lost).
* Consumers of one group share the work: in normal operation each message is
  handled by one of them.
* Order: within one channel, messages are delivered in the order they were
  sent. Redelivery after a failure breaks this order for that message only.
* ``receive`` waits at most ``timeout`` seconds and may return fewer
  messages than asked, or none. Cancelling it loses nothing.
* ``reject`` moves a message to the channel's dead-letter store with the
  reason, and acknowledges it: it is never handed out again by ``receive``.
* Messages travel in their wire form (``docs/wire-format.md``): what the wire
  cannot carry fails ``send`` (a header that is not a string, a string that is
  not valid UTF-8), and what it cannot read back (metadata that is not a JSON
  object of strings, a command without a target, an empty message id) is
  dead-lettered by ``receive`` with the reason ``invalid envelope: ...``. A
  body over the transport's limit (:data:`MAX_MESSAGE_BYTES` unless set
  otherwise) is dead-lettered by ``receive`` as ``message too large: ...``.
* Methods of one subscription are not called concurrently by the runtime,
  with one exception: ``renew`` runs while handlers run, and so beside
  ``remember`` (:class:`Deduplicates`, which records each step of a batch as
  its handlers finish). A transport keeps those two off each other's
  connection (Redis renews through its pool, not the subscription's held
  connection; PostgreSQL takes a connection per operation).
* A transport that cannot reach its server raises :class:`TransportError`
  (the operation may be retried once the server is back); it never turns an
  outage into a lost or silently acknowledged message.

Optional capabilities have their own protocols: :class:`DelayedRetry` (hand a
message back for redelivery after a delay, without blocking the consumer),
:class:`AcksOnReceive` (acknowledge a batch and receive the next in one go),
:class:`SettlesOnReceipt` (how many entries ``receive`` dead-lettered or
skipped by itself), :class:`RenewsLeases` (keep a message in hand from being
handed to another consumer), :class:`DeadLetterStore` (list, replay and
purge dead letters), :class:`ReportsStatus` (length, lag, pending and
consumers of a channel, for ``toolkit status`` and the metrics) and
:class:`Deduplicates` (remember the message ids a group handled, for
idempotent consumers: ``docs/delivery.md#deduplication``), :class:`HandlesInTransaction`
(the handlers' writes, the records and the acknowledgements in one transaction:
exactly-once effect) and :class:`Schedules`
(hold an envelope whose ``deliver_at_ms`` header is in the future until it is due:
``docs/delivery.md#scheduled-messages``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from toolkit.channels.status import ChannelStatus
from toolkit.envelope import Envelope, Headers

#: the default body size limit of every transport (16 MiB); larger bodies are dead-lettered
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024

__all__ = [
    "MAX_MESSAGE_BYTES",
    "AcksOnReceive",
    "DeadLetter",
    "DeadLetterStore",
    "Deduplicates",
    "DelayedRetry",
    "Delivery",
    "ExpectsGroups",
    "HandlesInTransaction",
    "Prioritizes",
    "RenewsLeases",
    "ReportsStatus",
    "ScheduledMessage",
    "Schedules",
    "SettlesOnReceipt",
    "Subscription",
    "SyncTransport",
    "Transport",
    "TransportError",
    "too_large",
]


class TransportError(ConnectionError):
    """The channel's server cannot be reached or cannot serve right now.

    Nothing was lost: messages not acknowledged stay pending. Callers back off
    and retry; the consumer does so on its own.
    """


class Delivery(msgspec.Struct, eq=False):
    """One received message: its envelope plus what the transport knows about this delivery.

    Handlers receive it as their second argument (``meta``): headers, user
    metadata, the channel, and ``delivery_count`` (1 on the first delivery).
    Compared by identity, as one delivery of a message is not another. A
    struct because the consumer makes one per message: msgspec's ``__init__``
    costs half a Python one.
    """

    envelope: Envelope
    channel: str
    #: the transport's handle for acknowledging (an entry id on Redis, an index in memory)
    delivery_id: Any
    delivery_count: int = 1

    @property
    def headers(self) -> Headers:
        return self.envelope.headers

    @property
    def message_id(self) -> str:
        return self.envelope.headers.message_id

    @property
    def routing_key(self) -> str:
        return self.envelope.headers.routing_key

    @property
    def metadata(self) -> dict[str, str]:
        return self.envelope.headers.metadata

    def __repr__(self) -> str:
        h = self.envelope.headers
        return (
            f"Delivery({h.kind} {h.routing_key!r} id={h.message_id} from {h.source_service!r} "
            f"on {self.channel!r}, delivery {self.delivery_count})"
        )


class DeadLetter:
    """A rejected message as kept in a channel's dead-letter store."""

    __slots__ = ("dead_letter_id", "details", "envelope", "fields", "group", "reason")

    def __init__(
        self,
        dead_letter_id: str,
        reason: str,
        group: str,
        envelope: Envelope | None,
        fields: dict[str, str | bytes],
        details: Mapping[str, str] | None = None,
    ) -> None:
        self.dead_letter_id = dead_letter_id
        self.reason = reason
        self.group = group
        #: None when the entry was not a valid envelope at all
        self.envelope = envelope
        #: the raw wire fields as they were received
        self.fields = fields
        #: structured facts about the failure: ``error_type``, ``error_message``,
        #: ``traceback``, ``attempts``, ``channel`` (whichever apply)
        self.details: dict[str, str] = dict(details) if details else {}

    def __repr__(self) -> str:
        key = self.envelope.headers.routing_key if self.envelope else "?"
        return f"DeadLetter({self.dead_letter_id} {key!r} by {self.group!r}: {self.reason})"


@runtime_checkable
class Subscription(Protocol):
    """A consumer's view of one channel, inside one consumer group."""

    channel: str
    group: str
    consumer: str

    async def receive(self, max_count: int, timeout: float) -> Sequence[Delivery]:
        """Up to ``max_count`` messages, waiting at most ``timeout`` seconds for the first.

        Entries that are not valid envelopes are not returned: the transport
        dead-letters them with the reason and acknowledges them.
        """
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge handled messages; they are not delivered to this group again."""
        ...

    async def reject(
        self, delivery: Delivery, reason: str, details: Mapping[str, str] | None = None
    ) -> None:
        """Dead-letter one message with ``reason`` (and optional ``details``), and acknowledge it.

        Storing the dead letter and acknowledging happen together: a crash
        leaves the message either pending or dead-lettered, never neither.
        """
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DelayedRetry(Protocol):
    """Optional subscription capability: deliver a message again later, without blocking.

    ``retry_later`` returns at once. The message stays pending in the group
    (a crash does not lose it) and is handed out again by ``receive`` (to any
    consumer of the group) no sooner than ``delay`` seconds later, with
    ``delivery_count`` one higher. Other messages keep flowing meanwhile.

    ``retries_waiting`` counts the group's messages waiting for their retry,
    whichever consumer scheduled them: the channel knows, so a consumer
    that waits until nothing is left (``until_empty``) asks it rather than
    keeping its own record.
    """

    async def retry_later(self, delivery: Delivery, delay: float) -> None: ...

    async def retries_waiting(self) -> int:
        """Messages of this subscription's group scheduled for a retry and not yet handed out."""
        ...


@runtime_checkable
class SettlesOnReceipt(Protocol):
    """Optional subscription capability: what ``receive`` settled without handing it out.

    Entries that are not envelopes are dead-lettered by ``receive`` itself,
    and a transport may acknowledge and skip entries not meant for this group;
    the consumer counts them through this (in its dead-lettered and skipped
    figures, and for ``stop_on_failure``).
    """

    def settled_on_receipt(self) -> tuple[int, int]:
        """(dead-lettered, skipped) entries since the last call."""
        ...


@runtime_checkable
class AcksOnReceive(Protocol):
    """Optional subscription capability: acknowledge a batch and receive the next at once.

    ``receive_acking(acked, ...)`` is ``ack(acked)`` then ``receive(...)``, in one
    round trip where the transport can (the acknowledgement goes first, so it is
    made before the read waits). It returns only once both are done; when it
    raises, the acknowledgement may or may not have been made (acknowledging
    again is harmless). The consumer uses it for a batch that needs nothing but
    acknowledgements.
    """

    async def receive_acking(
        self, acked: Sequence[Delivery], max_count: int, timeout: float
    ) -> Sequence[Delivery]: ...


@runtime_checkable
class RenewsLeases(Protocol):
    """Optional subscription capability: received messages are leased, and leases renew.

    A message received and not yet settled is this consumer's for
    ``visibility_timeout`` seconds; after that the group may hand it to
    another consumer (a consumer that died must not keep its messages). The
    consumer calls ``renew`` for the batch in hand every third of that time
    while its handlers run, so a slow batch stays with it; a consumer that
    stops renewing (frozen, killed) loses the batch once the timeout passes.
    A transport whose messages stay with their consumer until it closes has
    no leases and does not implement this.
    """

    visibility_timeout: float

    async def renew(self, deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
        """Restart the lease of those ``deliveries`` this consumer still holds, without
        counting a delivery; return the others (settled, or already given to another
        consumer), which are left as they are."""
        ...


@runtime_checkable
class Deduplicates(Protocol):
    """Optional subscription capability: the message ids this group handled lately.

    The store is the pipe's own and shared by every consumer of the group (a
    Redis key per group, a PostgreSQL table, a dict in memory). ``remember``
    records ids for ``window`` seconds from now; ``seen`` answers for a whole
    batch at once (one round trip). The consumer remembers a batch only after
    its handlers succeeded and before acknowledging it, so a crash in between
    runs a handler again (at least once), never loses a message.
    """

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        """The message ids among ``deliveries`` remembered and not yet expired."""
        ...

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        """Record the message ids of ``deliveries`` as handled, for ``window`` seconds."""
        ...


@runtime_checkable
class HandlesInTransaction(Protocol):
    """Optional subscription capability, with :class:`Deduplicates`: exactly-once effect.

    ``handle_in_transaction`` opens one transaction on the pipe's own database,
    records the ids of ``deliveries`` as handled for ``window`` seconds (those
    another consumer recorded, committed or committing, are duplicates: not
    handled), calls ``handle(delivery, connection)`` for each of the others, in
    a savepoint that is rolled back when it returns False or leaves the
    transaction aborted, removes the records of those, acknowledges the rest
    and the duplicates, and commits: the handlers' writes through
    ``connection``, the records and the acknowledgements commit together or not
    at all (``docs/delivery.md#exactly-once-effect-on-postgresql``). Returns
    (duplicates, aborted): ``aborted`` returned True with the transaction in
    error (a failed statement the handler caught) and were rolled back.
    """

    async def handle_in_transaction(
        self,
        deliveries: Sequence[Delivery],
        window: float,
        handle: Callable[[Delivery, Any], Awaitable[bool]],
    ) -> tuple[list[Delivery], list[Delivery]]: ...


class ScheduledMessage(msgspec.Struct, frozen=True):
    """A scheduled message waiting on its channel until it is due."""

    channel: str
    message_id: str
    #: when it is due, Unix time in milliseconds
    deliver_at_ms: int
    #: None when what is stored is not a valid envelope
    envelope: Envelope | None


@runtime_checkable
class Schedules(Protocol):
    """Optional transport capability: scheduled messages.

    ``send`` holds an envelope whose ``deliver_at_ms`` header is later than
    the pipe's clock (the server's, where there is a server) invisible to
    every group until then, durably where the pipe is durable; once due it
    joins the channel as if sent then, whether or not a consumer is running
    (whichever client touches the channel next moves it). A due time already
    passed means at once. A message scheduled with the id of one still
    waiting on the channel replaces it.

    ``schedules_messages`` is True: the flag the bus checks before sending a
    scheduled message (a pipe without it refuses ``delay=`` with a clear error).

    The flag and the two methods are separate promises. A pipe whose waiting
    messages cannot be read back (RabbitMQ: they wait in the broker's TTL queues)
    sets the flag, holds and delivers them, but refuses ``scheduled`` and
    ``cancel_scheduled`` with :class:`~toolkit.scheduling.ScheduledUnlistedError`
    before any I/O, and has the class attribute ``lists_scheduled = False`` (a
    message scheduled again with a waiting one's id does not replace it there).
    """

    schedules_messages: bool

    async def scheduled(self, channel: str, *, count: int | None = None) -> list[ScheduledMessage]:
        """The messages waiting on ``channel``, soonest due first, at most ``count``."""
        ...

    async def cancel_scheduled(self, channel: str, message_ids: Sequence[str]) -> int:
        """Drop waiting messages by message id; how many were dropped (those already
        delivered or unknown are not counted)."""
        ...


@runtime_checkable
class Prioritizes(Protocol):
    """Optional transport capability: message priorities.

    A subscription with a backlog hands out messages with a higher
    ``priority`` header (0 to 9) before lower ones; equal priorities keep
    their order. A message handed back (released, retried, replayed) keeps its
    priority. ``prioritizes_messages`` is True: the flag the bus checks before
    sending a priority above 0 (a pipe without it refuses with a clear error).
    """

    prioritizes_messages: bool


@runtime_checkable
class Transport(Protocol):
    """Named channels that move envelopes; knows nothing about routing."""

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        """Append envelopes to a channel in order. Returns once they are stored."""
        ...

    async def subscribe(self, channel: str, group: str, consumer: str) -> Subscription:
        """Open a subscription, creating the group at the start of the channel if needed."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class SyncTransport(Protocol):
    """A transport that can also send without an event loop (the sync publisher's)."""

    def send_sync(self, channel: str, envelopes: Sequence[Envelope]) -> None: ...


@runtime_checkable
class DeadLetterStore(Protocol):
    """Optional capability: list, replay and purge a channel's dead letters."""

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters of ``channel``, oldest first, optionally of one routing key, at most ``count``."""
        ...

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        """One dead letter by its id; None when there is none with that id."""
        ...

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back to their channel (fresh attempt count, same message id).

        Only the group that dead-lettered a message receives it again; other
        groups of the channel, which handled it already, do not. Dead letters
        that are not valid envelopes stay. Returns how many were replayed.
        """
        ...

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int: ...


@runtime_checkable
class ExpectsGroups(Protocol):
    """Optional transport capability: told ahead which groups a channel will have.

    A pipe that stores a message only for the groups that exist when it is
    sent (RabbitMQ: one queue per group, bound to the channel's exchange)
    declares these groups before its first send to the channel, so that a
    message sent before a group's first consumer started is not lost. Every
    bus built from a service map tells its transport the consumers of every
    channel (a pipe whose channels keep every message, as a stream does,
    does not implement this).
    """

    def expect_groups(self, channel: str, groups: Iterable[str]) -> None: ...


@runtime_checkable
class ReportsStatus(Protocol):
    """Optional transport capability: what a channel holds right now.

    Read-only and cheap enough to call every few seconds (the lag gauges do):
    a handful of round trips per channel, never a scan of its messages.
    """

    async def status(self, channel: str) -> ChannelStatus:
        """The channel's length, dead letters and groups; a channel that does not
        exist yet is empty and has no groups."""
        ...


def too_large(size: int, limit: int) -> str:
    """The dead-letter reason for a body over a channel's limit, the same on every transport."""
    return f"message too large: body is {size} bytes, the channel's limit is {limit}"
