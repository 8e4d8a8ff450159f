"""Exchange and queue names of a channel, and the ladder of retry delays.

==========================================  ====================================
name                                        what
==========================================  ====================================
``<prefix>.<channel>`` (exchange, fanout)   where messages are published
``<prefix>.<channel>.<group>`` (queue)      one group's messages (quorum), priority 0
``<prefix>.<channel>.<group>.p<k>``         one group's messages of priority ``k``
                                            (1..9, quorum; consumed with the above)
``<prefix>.<channel>.priority`` (exchange,  where messages of priority 1..9 are
headers)                                    published: each ``.p<k>`` queue is bound
                                            by ``priority = k``
``<prefix>.<channel>.<group>.priority``     the same for one group (exchange,
                                            headers): where its prioritized
                                            retries come back
``<prefix>.<channel>.unrouted``             the exchange's alternate exchange and
                                            its queue (quorum): what was sent while
                                            no group existed, handed to the first
``<prefix>.<channel>.dead`` (queue)         dead letters (classic: listing
                                            requeues them in place)
``<prefix>.<channel>.<group>.retry.<ms>``   a group's retries waiting ``ms``
                                            milliseconds (quorum, message TTL,
                                            dead-lettered back to the group queue)
``<prefix>.<channel>.<group>.retry.<ms>.p`` the same for priorities 1..9, dead-
                                            lettered to the group's priority exchange
``<prefix>:scheduled.<level>`` (exchange,  one level of the scheduled messages'
topic, and queue)                           cascade, shared by the prefix's
                                            channels (``schedule.py``)
``<prefix>:scheduled`` (exchange, topic)     its end: bound to each channel's
                                            exchange by the channel's word
==========================================  ====================================

A plain module: the command line reads names without loading the client.
"""

from __future__ import annotations

from typing import Final

from toolkit.priority import MAX_PRIORITY, MIN_PRIORITY

__all__ = [
    "PRIORITIES",
    "RETRY_LADDER_MS",
    "ChannelNames",
    "retry_bucket_ms",
    "scheduled_exchange",
    "scheduled_level",
    "validate_name",
]

#: retry delays are rounded up to one of these (milliseconds): powers of two from
#: 16 ms to about 24.8 days (the longest message TTL). One wait queue per step and
#: group, declared on first use; a longer delay waits 24.8 days.
RETRY_LADDER_MS: Final[tuple[int, ...]] = tuple(2**k for k in range(4, 32))

_MAX_NAME: Final = 255
#: every priority a group has a queue for (0: the group's queue itself)
PRIORITIES: Final = tuple(range(MIN_PRIORITY, MAX_PRIORITY + 1))


def validate_name(what: str, name: str) -> str:
    if not name:
        raise ValueError(f"{what} name must not be empty")
    if any(c in name for c in "\r\n\x00"):
        raise ValueError(f"{what} name {name!r} must not contain control characters")
    return name


def retry_bucket_ms(delay: float) -> int:
    """The step of :data:`RETRY_LADDER_MS` a retry ``delay`` (seconds) waits in: the
    first at least as long, else the last."""
    wanted = delay * 1000
    for step in RETRY_LADDER_MS:
        if step >= wanted:
            return step
    return RETRY_LADDER_MS[-1]


def scheduled_exchange(prefix: str) -> str:
    """The end of the prefix's scheduled-message cascade (``:``: no channel of the
    schema's names can be called that)."""
    return f"{prefix}:scheduled"


def scheduled_level(prefix: str, level: int) -> str:
    """The exchange and queue of one level of the cascade."""
    return f"{scheduled_exchange(prefix)}.{level}"


class ChannelNames:
    """The exchange and queue names of one channel."""

    __slots__ = ("channel", "dead", "exchange", "prefix", "prioritized", "unrouted")

    def __init__(self, channel: str, prefix: str) -> None:
        validate_name("channel", channel)
        validate_name("prefix", prefix)
        self.channel = channel
        self.prefix = prefix
        self.exchange = f"{prefix}.{channel}"
        self.unrouted = f"{self.exchange}.unrouted"
        self.dead = f"{self.exchange}.dead"
        self.prioritized = f"{self.exchange}.priority"
        if len(self.exchange.encode()) > _MAX_NAME - 40:
            raise ValueError(f"channel name {channel!r} is too long for RabbitMQ names")

    def queue(self, group: str) -> str:
        name = f"{self.exchange}.{validate_name('group', group)}"
        if len(name.encode()) > _MAX_NAME - 20:
            raise ValueError(f"group name {group!r} is too long for RabbitMQ names")
        return name

    def priority_queue(self, group: str, priority: int) -> str:
        """The group's queue of ``priority`` (0: the group's queue itself)."""
        queue = self.queue(group)
        return f"{queue}.p{priority}" if priority else queue

    def group_prioritized(self, group: str) -> str:
        """The group's own priority exchange (headers): prioritized retries come back here."""
        return f"{self.queue(group)}.priority"

    def retry_queue(self, group: str, step_ms: int, *, prioritized: bool = False) -> str:
        name = f"{self.queue(group)}.retry.{step_ms}"
        return f"{name}.p" if prioritized else name

    def retry_queues(self, group: str) -> list[str]:
        """Every wait queue the group may have: each step of the ladder, of both kinds."""
        return [
            self.retry_queue(group, step, prioritized=prioritized)
            for step in RETRY_LADDER_MS
            for prioritized in (False, True)
        ]

    def __repr__(self) -> str:
        return f"ChannelNames({self.exchange!r})"
