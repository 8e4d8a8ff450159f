"""Envelopes as rows of ``messages`` and back: deliveries and dead letters.

A message is stored as one column per wire field (``docs/wire-format.md``;
NULL where the field is absent), so ``psql`` shows it plainly. An entry the
columns cannot hold exactly (a hand-written one with unknown fields, header
bytes that are not UTF-8, a NUL character, a timestamp that is not an integer)
keeps its exact fields in ``raw`` (msgpack of ``[name, value]`` byte pairs);
its routing key still goes in its column where readable, for filtering. A
scheduled message's ``deliver_at`` and a prioritized one's ``priority`` have
columns of their own (after the wire fields, before ``raw``): the first says
when it is due, the second is copied into its delivery rows, which claims
order by.

Reading is the reverse: the columns of well-formed rows become an
:class:`~toolkit.envelope.Envelope` directly; anything unusual goes through
``Envelope.from_fields`` so errors read the same on every pipe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from toolkit.channels.base import DeadLetter, Delivery, too_large
from toolkit.channels.memory.wire import unchanged_by_wire, wire_fields
from toolkit.channels.postgres.schema import WIRE_COLUMN_TYPES
from toolkit.envelope import Envelope, Headers, WireError
from toolkit.priority import MAX_PRIORITY
from toolkit.wire import (
    COMMAND,
    EVENT,
    F_BODY,
    F_DELIVER_AT,
    F_PRIORITY,
    F_ROUTING_KEY,
    F_TIMESTAMP,
    JSON,
    WIRE_FIELDS,
)

__all__ = [
    "COLUMNS",
    "Row",
    "dead_letter",
    "encode_details",
    "read_row",
    "row_fields",
    "row_of_envelope",
    "row_of_fields",
]

#: the message columns, in wire field order (``timestamp`` quoted: a keyword)
COLUMNS: Final = tuple(column for column, _ in WIRE_COLUMN_TYPES)
#: column values of a message: the wire fields (str, the timestamp int, the body bytes),
#: deliver_at (int or None), priority (int or None) and raw
Row = tuple[Any, ...]

_RAW_ENCODER: Final = msgspec.msgpack.Encoder()
_RAW_DECODER: Final = msgspec.msgpack.Decoder(list[tuple[bytes, bytes]])
_META_ENCODER: Final = msgspec.json.Encoder()
_META_DECODER: Final = msgspec.json.Decoder(dict[str, str])
_FIELD_INDEX: Final = {name: i for i, name in enumerate(WIRE_FIELDS)}
_BODY: Final = _FIELD_INDEX[F_BODY]
_TIMESTAMP: Final = _FIELD_INDEX[F_TIMESTAMP]
_ROUTING_KEY: Final = _FIELD_INDEX[F_ROUTING_KEY]


def row_of_envelope(envelope: Envelope) -> Row:
    """The columns of a message sent by the toolkit.

    Raises where every pipe's ``send`` raises (:func:`~toolkit.channels.memory.wire.wire_fields`):
    ``AttributeError`` for a header that is not a string, ``UnicodeEncodeError``
    for one that is not UTF-8, ``TypeError`` for a timestamp that is not an int
    or a body that is not bytes.
    """
    h = envelope.headers
    priority = h.priority if h.priority.__class__ is int and 0 < h.priority <= MAX_PRIORITY else 0
    if h.deliver_at_ms or priority:
        # The due time and the priority go in their own columns; the rest is stored as
        # if sent at once without a priority. (A priority the wire would refuse stays a
        # header, kept in ``raw``: the row is dead-lettered when read, as on every pipe.)
        plain = row_of_envelope(
            msgspec.structs.replace(
                envelope,
                headers=msgspec.structs.replace(
                    h, deliver_at_ms=0, priority=0 if priority else h.priority
                ),
            )
        )
        return (*plain[:-3], h.deliver_at_ms or None, priority or None, plain[-1])
    if unchanged_by_wire(envelope):
        mid = h.message_id
        row = (
            mid,
            h.routing_key,
            h.kind,
            h.source_service,
            h.target_service or None,
            h.timestamp_ms,
            None if h.content_type == JSON else h.content_type,
            None if h.correlation_id == mid else h.correlation_id,
            h.causation_id or None,
            None,
            h.traceparent or None,
            h.tracestate or None,
            envelope.body,
            None,
            None,
            None,
        )
        text = "".join((mid, h.routing_key, h.source_service, h.target_service, h.correlation_id))
        rest = "".join((h.causation_id, h.content_type, h.traceparent, h.tracestate))
        if "\x00" in text or "\x00" in rest:
            return row_of_fields(wire_fields(envelope))
        return row
    return row_of_fields(wire_fields(envelope))


def row_of_fields(fields: Mapping[str, str | bytes] | Mapping[bytes, bytes]) -> Row:
    """The columns of an entry given as wire fields (hand-written ones too: any bytes)."""
    values: list[Any] = [None] * len(WIRE_FIELDS)
    exact = True
    for key, value in fields.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        index = _FIELD_INDEX.get(name)
        data = value if isinstance(value, bytes) else str(value).encode()
        if index is None:
            exact = False
            continue
        if index == _BODY:
            values[index] = data
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            exact = False
            continue
        if "\x00" in text:
            exact = False
            continue
        if index == _TIMESTAMP:
            try:
                number = int(text)
            except ValueError:
                exact = False
                continue
            if str(number) != text:
                exact = False
                continue
            values[index] = number
        else:
            values[index] = text
    if exact:
        return (*values, None, None, None)
    pairs = [
        (
            key if isinstance(key, bytes) else key.encode(),
            value if isinstance(value, bytes) else str(value).encode(),
        )
        for key, value in fields.items()
    ]
    routing_key = values[_ROUTING_KEY]
    return (
        *([None] * _ROUTING_KEY),
        routing_key,
        *([None] * (len(WIRE_FIELDS) - _ROUTING_KEY - 1)),
        None,
        None,
        _RAW_ENCODER.encode(pairs),
    )


def row_fields(row: Sequence[Any]) -> dict[str, bytes]:
    """The wire fields of a row (``COLUMNS`` order), as stored: names str, values bytes."""
    due, priority, raw = row[-3], row[-2], row[-1]
    fields: dict[str, bytes]
    if raw is not None:
        fields = {
            name.decode("utf-8", "replace"): value for name, value in _RAW_DECODER.decode(raw)
        }
        if due is not None:
            fields.setdefault(F_DELIVER_AT, str(due).encode())
        if priority is not None:
            fields.setdefault(F_PRIORITY, str(priority).encode())
        return fields
    fields = {}
    for name, value in zip(WIRE_FIELDS, row, strict=False):
        if value is None:
            continue
        if isinstance(value, bytes):
            fields[name] = value
        elif isinstance(value, int):
            fields[name] = str(value).encode()
        else:
            fields[name] = value.encode()
    if due is not None:
        fields[F_DELIVER_AT] = str(due).encode()
    if priority is not None:
        fields[F_PRIORITY] = str(priority).encode()
    return fields


def read_row(
    row: Sequence[Any], channel: str, max_bytes: int, entry: int, count: int
) -> Delivery | str:
    """The delivery of a claimed row (``COLUMNS`` order), or the reason to dead-letter it.

    Nothing a row holds can raise out of here: whatever fails, it is this row's fault alone.
    """
    (mid, key, kind, source, target, ts, ctype, corr, cause, meta, parent, state, body, due, prio,
     raw) = row  # fmt: skip
    if (
        raw is None
        and (prio is None or 0 < prio <= MAX_PRIORITY)
        and meta is None
        and body is not None
        and mid
        and key
        and source
        and (kind == EVENT or (kind == COMMAND and target))
        and len(body) <= max_bytes
    ):
        envelope = Envelope(
            Headers(
                mid,
                key,
                EVENT if kind == EVENT else COMMAND,
                source,
                ts if ts is not None else int(time.time() * 1000),
                target or "",
                ctype if ctype is not None else JSON,
                corr or mid,
                cause or "",
                {},
                parent or "",
                state or "",
                due or 0,
                prio or 0,
            ),
            body,
        )
        return Delivery(envelope, channel, entry, count)
    try:
        fields = row_fields(row)
        data = fields.get(F_BODY)
        if data is not None and len(data) > max_bytes:
            return too_large(len(data), max_bytes)
        return Delivery(Envelope.from_fields(fields), channel, entry, count)
    except WireError as exc:
        return f"invalid envelope: {exc}"
    except Exception as exc:
        return f"invalid envelope: {type(exc).__name__}: {exc}"


def encode_details(details: Mapping[str, str]) -> str:
    return _META_ENCODER.encode(dict(details)).decode()


def dead_letter(
    dead_id: int, reason: str, group: str, details: Any, row: Sequence[Any]
) -> DeadLetter:
    """A dead letter from its row: id, reason, group, details (a dict or JSON text), columns."""
    fields: dict[str, str | bytes] = dict(row_fields(row))
    try:
        envelope: Envelope | None = Envelope.from_fields(fields)
    except WireError:
        envelope = None
    if isinstance(details, str | bytes):
        details = _META_DECODER.decode(details)
    return DeadLetter(str(dead_id), reason, group, envelope, fields, details)
