"""Redis key names of a channel.

Every key of a channel carries the channel name as its Redis Cluster hash
tag (the part in braces), so the stream, its dead-letter stream and its
helper keys live in one slot: the scripts and transactions that touch
several of them at once work on a cluster too.

==============================  =============================================
key                             what
==============================  =============================================
``{prefix}:{<channel>}``        the channel's stream (one entry per message)
``{prefix}:{<channel>}:dead``   dead-letter stream (original fields + ``dlq_*``)
``{prefix}:{<channel>}:delay:<group>``
                                sorted set: entry ids of the group waiting for
                                a retry, scored by due time (Unix ms)
``{prefix}:{<channel>}:seen:<group>``
                                sorted set: message ids the group handled,
                                scored by when their record expires (Unix ms;
                                deduplication, ``toolkit.channels.redis.dedup``)
``{prefix}:{<channel>}:scheduled``
                                sorted set: message ids of scheduled messages,
                                scored by due time (Unix ms)
``{prefix}:{<channel>}:scheduled:entries``
                                hash: message id -> the entry's fields, as
                                netstrings (``toolkit.channels.redis.schedule``)

``{prefix}:{<channel>}:bands``   set: the priorities above 0 sent to the channel
``{prefix}:{<channel>}:p<n>``   band stream of priority n (1-9): the channel's
                                messages sent with that priority, each band a
                                stream with keys of its own (``:p<n>:delay:<group>``,
                                ``:p<n>:scheduled``...) but the channel's dead
                                letters and deduplication records
                                (``toolkit.channels.redis.priorities``)
==============================  =============================================

``prefix`` defaults to ``tk``; with it, channel ``ticket_commands`` is the
stream ``tk:{ticket_commands}``.
"""

from __future__ import annotations

from toolkit.pipe_settings import DEFAULT_PREFIX

__all__ = ["BAND", "DEFAULT_PREFIX", "ChannelKeys", "band_name", "validate_name"]

#: between a channel's name and a priority: ``orders!9`` names band 9 of ``orders``
#: (``!`` cannot be in a channel name the schemas give)
BAND = "!"


def band_name(channel: str, priority: int) -> str:
    """The name band ``priority`` of ``channel`` is keyed by (priority 0: the channel's own)."""
    return f"{channel}{BAND}{priority}" if priority else channel


def validate_name(what: str, name: str) -> str:
    """Reject names that would break the hash tag or the key layout."""
    if not name:
        raise ValueError(f"{what} name must not be empty")
    bad = set(name) & set("{}\r\n\x00")
    if bad:
        raise ValueError(f"{what} name {name!r} must not contain {''.join(sorted(bad))!r}")
    return name


class ChannelKeys:
    """The Redis keys of one channel."""

    __slots__ = ("_own", "bands", "channel", "dead", "prefix", "stream")

    def __init__(self, channel: str, prefix: str = DEFAULT_PREFIX) -> None:
        validate_name("channel", channel)
        validate_name("key prefix", prefix)
        self.channel = channel
        self.prefix = prefix
        # A band (``orders!9``) is tagged by its channel: one slot for all its keys.
        own, _, priority = channel.partition(BAND)
        #: the channel's own stream: a band shares its dead letters and records
        self._own = f"{prefix}:{{{own}}}"
        self.stream = f"{self._own}:p{priority}" if priority else self._own
        self.dead = f"{self._own}:dead"
        self.bands = f"{self._own}:bands"

    def band(self, priority: int) -> str:
        return f"{self._own}:p{priority}"

    def delay(self, group: str) -> str:
        return f"{self.stream}:delay:{validate_name('group', group)}"

    def seen(self, group: str) -> str:
        return f"{self._own}:seen:{validate_name('group', group)}"

    @property
    def scheduled(self) -> str:
        return f"{self.stream}:scheduled"

    @property
    def scheduled_entries(self) -> str:
        return f"{self.stream}:scheduled:entries"

    def __repr__(self) -> str:
        return f"ChannelKeys({self.stream!r})"
