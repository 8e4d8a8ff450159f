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
==============================  =============================================

``prefix`` defaults to ``tk``; with it, channel ``ticket_commands`` is the
stream ``tk:{ticket_commands}``.
"""

from __future__ import annotations

from toolkit.pipe_settings import DEFAULT_PREFIX

__all__ = ["DEFAULT_PREFIX", "ChannelKeys", "validate_name"]


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

    __slots__ = ("channel", "dead", "prefix", "stream")

    def __init__(self, channel: str, prefix: str = DEFAULT_PREFIX) -> None:
        validate_name("channel", channel)
        validate_name("key prefix", prefix)
        self.channel = channel
        self.prefix = prefix
        self.stream = f"{prefix}:{{{channel}}}"
        self.dead = f"{self.stream}:dead"

    def delay(self, group: str) -> str:
        return f"{self.stream}:delay:{validate_name('group', group)}"

    def __repr__(self) -> str:
        return f"ChannelKeys({self.stream!r})"
