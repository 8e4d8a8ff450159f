"""In-memory channels: the same semantics as Redis Streams, inside one process.

Each channel is an append-only log. Each consumer group keeps a read offset
and a pending table; unacknowledged messages of a closed subscription go back
to the group (as a crashed consumer's would after the visibility timeout), so
tests can exercise redelivery without a server. ``retry_later`` keeps a
message pending and hands it back once its delay has passed, like the Redis
channel's delay set.

So that a test passing here does not fail on Redis, messages go through the
wire form as they would there (:mod:`toolkit.channels.memory.wire`): ``send``
raises what the Redis transport's send raises, ``receive`` dead-letters what
Redis would (invalid envelopes, bodies over ``max_message_bytes``) with the
same reasons, and a replayed dead letter goes back to its group only.

Memory stays bounded: once every group of a channel has acknowledged a
message, only the latest ``history`` messages of the channel are kept (for
:meth:`InMemoryTransport.messages` and for groups created later); a channel
nobody consumes yet keeps everything, as nothing may be lost before its
first consumer starts.

==================  ===========================================================
``transport``       :class:`InMemoryTransport`: sending, groups, inspection,
                    the dead-letter store
``subscription``    :class:`InMemorySubscription`: receive, ack, retry, reject
``log``             a channel's log and its groups' offsets and pending tables
``wire``            the wire round trip (and the envelopes that may skip it)
==================  ===========================================================
"""

from __future__ import annotations

from toolkit.channels.memory.subscription import InMemorySubscription
from toolkit.channels.memory.transport import DEFAULT_HISTORY, InMemoryTransport

__all__ = ["DEFAULT_HISTORY", "InMemorySubscription", "InMemoryTransport"]
