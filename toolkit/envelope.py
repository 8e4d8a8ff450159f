"""The envelope: headers plus body bytes, and its flat wire form.

The wire form (``docs/wire-format.md``) is a flat map of string fields, the
shape of a Redis stream entry. It is a public contract: a program in another
language that writes these fields is handled like any Python publisher.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from typing import Final

import msgspec

from toolkit.wire import (
    COMMAND,
    EVENT,
    F_BODY,
    F_CAUSATION,
    F_CONTENT_TYPE,
    F_CORRELATION,
    F_DELIVER_AT,
    F_KIND,
    F_MESSAGE_ID,
    F_METADATA,
    F_PRIORITY,
    F_ROUTING_KEY,
    F_SOURCE,
    F_TARGET,
    F_TIMESTAMP,
    F_TRACEPARENT,
    F_TRACESTATE,
    JSON,
    WIRE_FIELDS,
    Kind,
)

__all__ = [
    "COMMAND",
    "EVENT",
    "JSON",
    "Envelope",
    "Headers",
    "Kind",
    "WireError",
    "new_message_id",
]


class WireError(ValueError):
    """An entry that is not a valid envelope; the message is the dead-letter reason."""


class Headers(msgspec.Struct, frozen=True, gc=False):
    """Everything about a message except its body.

    ``correlation_id`` defaults to the message id of the first message of a
    conversation; ``causation_id`` is the id of the message whose handler sent
    this one (empty for a message that started a conversation).
    """

    message_id: str
    routing_key: str
    kind: Kind
    source_service: str
    timestamp_ms: int
    target_service: str = ""
    content_type: str = JSON
    correlation_id: str = ""
    causation_id: str = ""
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    traceparent: str = ""
    tracestate: str = ""
    #: a scheduled message: when it is due (Unix ms); 0 for a message delivered at once
    deliver_at_ms: int = 0
    #: 0 (the default) to 9: a consumer with a backlog takes higher priorities first
    priority: int = 0


class Envelope(msgspec.Struct, frozen=True, gc=False):
    headers: Headers
    body: bytes

    def to_fields(self) -> dict[str, str | bytes]:
        """The flat wire form: string fields, ``body`` as bytes, empty optional fields left out."""
        h = self.headers
        fields: dict[str, str | bytes] = {
            F_MESSAGE_ID: h.message_id,
            F_ROUTING_KEY: h.routing_key,
            F_KIND: h.kind,
            F_SOURCE: h.source_service,
        }
        if h.target_service:
            fields[F_TARGET] = h.target_service
        fields[F_TIMESTAMP] = str(h.timestamp_ms)
        if h.deliver_at_ms:
            fields[F_DELIVER_AT] = str(h.deliver_at_ms)
        if h.priority:
            fields[F_PRIORITY] = str(h.priority)
        if h.content_type != JSON:
            fields[F_CONTENT_TYPE] = h.content_type
        if h.correlation_id and h.correlation_id != h.message_id:
            fields[F_CORRELATION] = h.correlation_id
        if h.causation_id:
            fields[F_CAUSATION] = h.causation_id
        if h.metadata:
            fields[F_METADATA] = _META_ENCODER.encode(h.metadata)
        if h.traceparent:
            fields[F_TRACEPARENT] = h.traceparent
            if h.tracestate:
                fields[F_TRACESTATE] = h.tracestate
        fields[F_BODY] = self.body
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes] | Mapping[str, str | bytes]) -> Envelope:
        """Parse the flat wire form; raises :class:`WireError` naming what is wrong."""
        values: dict[str, str | bytes] = {
            (k.decode("utf-8", "replace") if isinstance(k, bytes) else k): v
            for k, v in fields.items()
        }
        if not values:
            raise WireError("empty entry: no fields")
        missing = [f for f in _REQUIRED if f not in values]
        if missing:
            raise WireError("missing header field(s): " + ", ".join(missing))
        # Only the headers are read: unknown extra fields are ignored, whatever their bytes.
        text: dict[str, str] = {}
        for name in _HEADERS:
            value = values.get(name)
            if value is None:
                continue
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise WireError(f"header field is not UTF-8: {name}: {exc}") from None
            text[name] = value
        raw_kind = text[F_KIND]
        kind: Kind
        if raw_kind == COMMAND:
            kind = COMMAND
        elif raw_kind == EVENT:
            kind = EVENT
        else:
            raise WireError(f"kind must be 'command' or 'event', not {raw_kind!r}")
        target = text.get(F_TARGET, "")
        if kind == COMMAND and not target:
            raise WireError("a command needs the target_service header")
        raw_ts = text.get(F_TIMESTAMP)
        if raw_ts is None:
            timestamp = int(time.time() * 1000)
        else:
            try:
                timestamp = int(raw_ts)
            except ValueError:
                raise WireError(f"timestamp must be integer milliseconds, not {raw_ts!r}") from None
        raw_due = text.get(F_DELIVER_AT)
        deliver_at = 0
        if raw_due:
            try:
                deliver_at = int(raw_due)
            except ValueError:
                raise WireError(
                    f"deliver_at must be integer milliseconds, not {raw_due!r}"
                ) from None
        raw_priority = text.get(F_PRIORITY)
        priority = 0
        if raw_priority:
            priority = _PRIORITIES.get(raw_priority, -1)
            if priority < 0:
                raise WireError(f"priority must be an integer from 0 to 9, not {raw_priority!r}")
        meta_raw = text.get(F_METADATA)
        metadata: dict[str, str] = {}
        if meta_raw:
            try:
                metadata = _META_DECODER.decode(meta_raw)
            except Exception as exc:
                raise WireError(f"metadata must be a JSON object of strings: {exc}") from None
        body = values[F_BODY]
        if isinstance(body, str):
            try:
                body = body.encode()
            except UnicodeEncodeError as exc:
                raise WireError(f"body is not encodable as UTF-8: {exc}") from None
        message_id = text[F_MESSAGE_ID]
        if not message_id or not text[F_ROUTING_KEY] or not text[F_SOURCE]:
            raise WireError("message_id, routing_key and source_service must not be empty")
        return cls(
            Headers(
                message_id=message_id,
                routing_key=text[F_ROUTING_KEY],
                kind=kind,
                source_service=text[F_SOURCE],
                timestamp_ms=timestamp,
                target_service=target,
                content_type=text.get(F_CONTENT_TYPE, JSON),
                correlation_id=text.get(F_CORRELATION) or message_id,
                causation_id=text.get(F_CAUSATION, ""),
                metadata=metadata,
                traceparent=text.get(F_TRACEPARENT, ""),
                tracestate=text.get(F_TRACESTATE, ""),
                deliver_at_ms=deliver_at,
                priority=priority,
            ),
            body,
        )


_REQUIRED: Final = (F_MESSAGE_ID, F_ROUTING_KEY, F_KIND, F_SOURCE, F_BODY)
_HEADERS: Final = (*(f for f in WIRE_FIELDS if f != F_BODY), F_DELIVER_AT, F_PRIORITY)
#: the priority header's only valid spellings (no sign, no spaces, no leading zeros)
_PRIORITIES: Final = {str(p): p for p in range(10)}
_META_ENCODER: Final = msgspec.json.Encoder()
_META_DECODER: Final = msgspec.json.Decoder(dict[str, str])


# Message ids: 16 hex digits of process-random prefix + 16 hex digits of a
# counter. Unique without a syscall per message (uuid4 reads os.urandom each
# time, which alone would cost a third of the in-memory budget per message).
# The counter starts at a random point in [2**60, 2**62), so hex() always gives
# exactly 16 digits (and is cheaper than formatting with a width).
def _new_counter() -> itertools.count[int]:
    return itertools.count((1 << 60) + (int.from_bytes(os.urandom(8), "big") >> 3))


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = _new_counter()


def _reseed_after_fork() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = os.urandom(8).hex()
    _ID_COUNTER = _new_counter()


# Not on Windows, which has no fork (and so no ids copied into a child).
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)


def new_message_id() -> str:
    """A new 32-hex-digit message id, unique across processes and restarts."""
    return _ID_PREFIX + hex(next(_ID_COUNTER))[2:]
