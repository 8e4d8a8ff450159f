"""The wire round trip of in-memory channels: what Redis would store and read back.

An envelope sent to an in-memory channel becomes what the Redis transport
writes (``Envelope.to_fields()``, every value as bytes) and is read back with
``Envelope.from_fields`` when received, so whatever Redis rejects or alters
is rejected or altered here the same way. Most envelopes (those the bus
builds) come back unchanged: :func:`unchanged_by_wire` recognises them, and
they are stored as they are, without the round trip.
"""

from __future__ import annotations

from collections.abc import Mapping

from toolkit.envelope import Envelope
from toolkit.wire import COMMAND, EVENT, F_BODY, F_PRIORITY

__all__ = [
    "WireEntry",
    "entry_priority",
    "parse_or_none",
    "raw_fields",
    "unchanged_by_wire",
    "wire_fields",
]


class WireEntry:
    """An entry held in its wire form, read (and checked) when received.

    ``group``: the only group that receives it (a replayed dead letter), or None for all.
    """

    __slots__ = ("fields", "group")

    def __init__(self, fields: dict[str, bytes], group: str | None = None) -> None:
        self.fields = fields
        self.group = group


def wire_fields(envelope: Envelope) -> dict[str, bytes]:
    """``envelope.to_fields()`` with every value as the bytes Redis stores.

    Raises where the Redis transport's ``send`` raises: ``AttributeError`` for
    a header that is not a string (its packer calls ``str.encode``),
    ``UnicodeEncodeError`` for a string that is not UTF-8 (a lone surrogate),
    ``TypeError`` for a timestamp that is not an int or a body that is not bytes.
    """
    timestamp = envelope.headers.timestamp_ms
    if timestamp.__class__ is not int:
        raise TypeError(f"timestamp_ms must be an int, not {type(timestamp).__name__}")
    return {
        name: value
        if value.__class__ is bytes
        else (_body(value) if name == F_BODY else value.encode())  # type: ignore[union-attr]
        for name, value in envelope.to_fields().items()
    }


def _body(value: object) -> bytes:
    if isinstance(value, str):
        raise TypeError("the body must be bytes, not str")
    return bytes(memoryview(value))  # type: ignore[arg-type]


def raw_fields(fields: Mapping[str, str | bytes]) -> dict[str, bytes]:
    """Fields written by hand, as Redis stores them (values as bytes)."""
    return {k: v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()}


def parse_or_none(fields: Mapping[str, bytes]) -> Envelope | None:
    try:
        return Envelope.from_fields(fields)
    except Exception:  # unreadable in any way: kept as raw fields only
        return None


_PRIORITIES = {str(p).encode(): p for p in range(1, 10)}


def entry_priority(entry: Envelope | WireEntry) -> int:
    """The priority a channel orders ``entry`` by: 0 for none or one the wire would refuse
    (the entry is dead-lettered when received, in its turn)."""
    if entry.__class__ is WireEntry:
        assert isinstance(entry, WireEntry)
        return _PRIORITIES.get(entry.fields.get(F_PRIORITY, b""), 0)
    assert isinstance(entry, Envelope)
    priority = entry.headers.priority
    return priority if priority.__class__ is int and 0 < priority <= 9 else 0


def unchanged_by_wire(envelope: Envelope) -> bool:
    """Whether ``Envelope.from_fields(wire_fields(envelope)) == envelope``, without doing it.

    True for ASCII string headers, a non-empty message id, routing key, source
    and correlation id, a known kind (a command with its target), an int
    timestamp, no metadata, no due time and a bytes body: everything the wire form
    carries unchanged and reads back as it was, and that joins the channel at once.
    False sends the envelope the long way (where a scheduled one is held apart).
    """
    h = envelope.headers
    try:
        text = "".join(
            (
                h.message_id,
                h.routing_key,
                h.source_service,
                h.target_service,
                h.correlation_id,
                h.causation_id,
                h.content_type,
                h.traceparent,
                h.tracestate,
            )
        )
    except TypeError:  # a header that is not a string
        return False
    kind = h.kind
    return (
        text.isascii()
        and h.message_id != ""
        and h.routing_key != ""
        and h.source_service != ""
        and h.correlation_id != ""
        and (kind == EVENT or (kind == COMMAND and h.target_service != ""))
        and h.timestamp_ms.__class__ is int
        and h.deliver_at_ms == 0
        and (h.priority == 0 or (h.priority.__class__ is int and 0 < h.priority <= 9))
        and h.metadata.__class__ is dict
        and not h.metadata
        and envelope.body.__class__ is bytes
    )
