"""What a channel holds on RabbitMQ right now (:class:`~toolkit.channels.base.ReportsStatus`).

Without the management plugin AMQP tells two figures per queue: a passive
``queue.declare`` answers the messages *ready* in it and its consumers. So:

* a group's LAG is what its queues of every priority (``.p1`` .. ``.p9`` and
  the group's queue) hold ready; its RETRYING is what its retry wait queues
  hold (every step of the ladder, both kinds);
* PENDING (delivered, not yet acknowledged) is not told by a declare:
  ``pending_known`` is False (``pending`` 0, shown ``?``, no gauge). The age
  of the oldest pending message neither: None;
* consumers cannot be named: the group's queue counts them
  (``consumer_count``; every subscription consumes each priority's queue, the
  group's queue once per subscription), and ``consumers`` stays empty;
* the channel's length is what its queues hold ready: the unrouted queue
  (sent while it had no group) plus each group's LAG and RETRYING (a message
  is a copy per group); its dead letters, what its dead-letter queue holds
  ready (a ``toolkit dlq`` listing holds them unacknowledged meanwhile);
* no leases: a consumer's messages go back when its connection closes, so no
  visibility timeout.

The groups are those the transport knows: expected (the service map's
consumers, :class:`~toolkit.channels.base.ExpectsGroups`, as ``toolkit
status`` tells it) and subscribed to in this process; AMQP cannot list
queues, so a group known to neither is not found. A known group whose queue
does not exist is left out, and nothing is declared: a passive declare of a
missing queue is refused (404) and closes its AMQP channel, so the probes run
on channels of their own, a fresh one after each refusal.

Cost: a group is 66 queues (10 priorities, 28 ladder steps of two kinds), the
steps never used each a refusal and a new channel; :data:`_PROBES` probes at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from aiormq.exceptions import ChannelNotFoundEntity

from toolkit.channels.rabbitmq.errors import is_transient, unavailable
from toolkit.channels.rabbitmq.names import PRIORITIES, ChannelNames
from toolkit.channels.status import ChannelStatus, GroupStatus

if TYPE_CHECKING:
    import aiormq

    from toolkit.channels.rabbitmq.link import Link

__all__ = ["RabbitStatus", "probe"]

#: AMQP channels probing queues at once
_PROBES: Final = 8

#: a queue's messages ready and its consumers
Counts = tuple[int, int]


async def probe(link: Link, queues: Sequence[str]) -> dict[str, Counts | None]:
    """Each queue's counts by a passive declare; None for a queue that does not exist
    (never created: the refusal closes the AMQP channel, the next probe opens another)."""
    found: dict[str, Counts | None] = {}
    todo = list(reversed(queues))

    async def worker() -> None:
        amqp: aiormq.abc.AbstractChannel | None = None
        try:
            while todo:
                queue = todo.pop()
                if amqp is None or amqp.is_closed:
                    amqp = await link.channel()
                try:
                    ok = await amqp.queue_declare(queue, passive=True)
                except ChannelNotFoundEntity:
                    found[queue] = None
                    continue
                assert ok is not None
                found[queue] = (int(ok.message_count or 0), int(ok.consumer_count or 0))
        finally:
            if amqp is not None and not amqp.is_closed:
                # Closing a channel of a connection that is going: the error said so.
                with contextlib.suppress(Exception):
                    await amqp.close()

    try:
        async with asyncio.TaskGroup() as probes:
            for _ in range(min(_PROBES, len(queues))):
                probes.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure; the others were cancelled
    return found


def _ready(found: dict[str, Counts | None], queues: Sequence[str]) -> int:
    return sum(counts[0] for q in queues if (counts := found[q]) is not None)


class RabbitStatus:
    """``status`` for :class:`~toolkit.channels.rabbitmq.RabbitTransport` (a base class
    of it: uses its connection, timeout and the groups it knows)."""

    link: Link
    timeout: float

    # The transport's (declared here for the type checker).
    def names(self, channel: str) -> ChannelNames:
        raise NotImplementedError

    def known_groups(self, channel: str) -> list[str]:
        raise NotImplementedError

    async def status(self, channel: str) -> ChannelStatus:
        """The channel's ready messages, dead letters and known groups (module docstring)."""
        names = self.names(channel)
        groups = self.known_groups(channel)
        try:
            async with asyncio.timeout(self.timeout):
                found = await probe(
                    self.link, [names.unrouted, names.dead, *map(names.queue, groups)]
                )
                groups = [g for g in groups if found[names.queue(g)] is not None]
                more = [
                    *(names.priority_queue(g, p) for g in groups for p in PRIORITIES[1:]),
                    *(q for g in groups for q in names.retry_queues(g)),
                ]
                found.update(await probe(self.link, more))
        except Exception as exc:
            if is_transient(exc):
                raise unavailable(f"reading the status of {channel!r}", exc) from exc
            raise
        statuses = []
        length = _ready(found, [names.unrouted])
        for group in groups:
            lag = _ready(found, [names.priority_queue(group, p) for p in PRIORITIES])
            retrying = _ready(found, names.retry_queues(group))
            length += lag + retrying
            own = found[names.queue(group)]
            statuses.append(
                GroupStatus(
                    name=group,
                    lag=lag,
                    pending=0,
                    pending_known=False,
                    retrying=retrying,
                    oldest_pending_age=None,
                    consumer_count=None if own is None else own[1],
                )
            )
        return ChannelStatus(
            channel=channel,
            length=length,
            dead_letters=_ready(found, [names.dead]),
            groups=statuses,
        )
