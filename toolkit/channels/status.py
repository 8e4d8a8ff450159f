"""What a channel holds right now: the answer of :class:`~toolkit.channels.base.ReportsStatus`.

Plain data for ``toolkit status`` (table and ``--json``) and for the lag and
pending gauges of :mod:`toolkit.telemetry`. Figures a transport cannot tell
are None, never a guess.
"""

from __future__ import annotations

import msgspec

__all__ = ["ChannelStatus", "ConsumerStatus", "GroupStatus"]


class ConsumerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer of a group."""

    name: str
    #: messages delivered to it and not yet settled
    pending: int
    #: seconds since it last read from the channel; None when the transport cannot tell
    idle: float | None = None

    def dead(self, visibility_timeout: float | None) -> bool:
        """Holds messages and has not read for longer than the visibility timeout: it
        stopped (killed, frozen), and its messages wait to be reclaimed by another."""
        return (
            visibility_timeout is not None
            and self.idle is not None
            and self.pending > 0
            and self.idle > visibility_timeout
        )

    def gone(self, visibility_timeout: float | None) -> bool:
        """Owns nothing and has not read for longer than the visibility timeout: most
        likely a process that went away (it is forgotten after the idle-consumer timeout)."""
        return (
            visibility_timeout is not None
            and self.idle is not None
            and self.pending == 0
            and self.idle > visibility_timeout
        )


class GroupStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer group of a channel (one consuming service)."""

    name: str
    #: messages of the channel not yet delivered to the group; None when the transport
    #: cannot tell (Redis, after trimming or deletions past the group's position)
    lag: int | None
    #: delivered and not yet settled (retrying ones included); 0 when not ``pending_known``
    pending: int
    #: pending messages waiting for a retry after a failure (delayed)
    retrying: int
    #: seconds since the oldest pending message was stored; None when nothing is pending
    oldest_pending_age: float | None
    consumers: list[ConsumerStatus] = msgspec.field(default_factory=list)
    #: False: the transport cannot count what is pending (RabbitMQ: AMQP counts only
    #: the messages ready in a queue), and ``pending`` is 0 for want of a figure
    pending_known: bool = True
    #: consumers attached, when the transport counts them but cannot name them
    #: (RabbitMQ; ``consumers`` is then empty); None when ``consumers`` lists them
    consumer_count: int | None = None


class ChannelStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One channel on its pipe."""

    channel: str
    #: entries the channel holds (acknowledged ones not yet trimmed included)
    length: int
    #: messages in its dead-letter store
    dead_letters: int
    groups: list[GroupStatus] = msgspec.field(default_factory=list)
    #: the lease a consumer holds a message for, seconds (None: the pipe has no leases);
    #: a consumer idle for longer with messages in hand is dead
    visibility_timeout: float | None = None
