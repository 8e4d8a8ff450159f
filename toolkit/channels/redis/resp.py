"""Stream entries as command arguments, down to RESP packed by hand.

redis-py packs every argument of every command in Python; for a batch of
entries that costs more than everything else a publisher does. Here an
envelope with the usual headers becomes its bulk strings in one ``%``
format, with the field names, counts and the few distinct routing keys and
service names packed once and reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from toolkit.envelope import Envelope
from toolkit.wire import COMMAND, EVENT, JSON, WIRE_FIELDS

__all__ = ["bulk", "fields_args", "pack_envelope"]


def fields_args(fields: Mapping[str, str | bytes] | Mapping[bytes, bytes]) -> list[Any]:
    args: list[Any] = []
    for k, v in fields.items():
        args.append(k)
        args.append(v)
    return args


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


_FIELD_BULKS: Final = {name: bulk(name.encode()) for name in WIRE_FIELDS}
_COUNT_BULKS: Final = {n: bulk(str(n).encode()) for n in range(0, 64, 2)}


def _pack_entry(fields: Mapping[str, str | bytes], parts: list[bytes]) -> int:
    """Append one entry's ``count field value ...`` arguments (RESP bulk strings); returns how many."""
    count = 2 * len(fields)
    parts.append(_COUNT_BULKS.get(count) or bulk(str(count).encode()))
    append = parts.append
    for name, value in fields.items():
        append(_FIELD_BULKS.get(name) or bulk(name.encode()))
        data = value.encode() if isinstance(value, str) else value
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return count + 1


_KIND_BULKS: Final = {EVENT: bulk(b"event"), COMMAND: bulk(b"command")}
#: packed bulk strings of routing keys and service names (few distinct values)
_NAME_BULKS: dict[str, bytes] = {}
_NAME_BULKS_MAX: Final = 4096


def _name_bulk(name: str) -> bytes:
    packed = _NAME_BULKS.get(name)
    if packed is None:
        packed = bulk(name.encode())
        if len(_NAME_BULKS) < _NAME_BULKS_MAX:
            _NAME_BULKS[name] = packed
    return packed


_HEAD_6: Final = _COUNT_BULKS[12] + _FIELD_BULKS["message_id"]
_HEAD_7: Final = _COUNT_BULKS[14] + _FIELD_BULKS["message_id"]
_F_ROUTING: Final = _FIELD_BULKS["routing_key"]
_F_KIND: Final = _FIELD_BULKS["kind"]
_F_SOURCE: Final = _FIELD_BULKS["source_service"]
_F_TARGET: Final = _FIELD_BULKS["target_service"]
_F_TIMESTAMP: Final = _FIELD_BULKS["timestamp"]
_F_BODY: Final = _FIELD_BULKS["body"]


def pack_envelope(envelope: Envelope, parts: list[bytes]) -> int:
    """``_pack_entry(envelope.to_fields())`` without the dict, for the usual headers."""
    h = envelope.headers
    if (
        h.metadata
        or h.causation_id
        or h.content_type != JSON
        or h.traceparent
        or h.deliver_at_ms
        or h.priority
        or (h.correlation_id and h.correlation_id != h.message_id)
    ):
        return _pack_entry(envelope.to_fields(), parts)
    mid = h.message_id.encode()
    ts = b"%d" % h.timestamp_ms
    body = envelope.body
    if h.target_service:
        parts.append(
            b"%s$%d\r\n%s\r\n%s%s%s%s%s%s%s%s%s$%d\r\n%s\r\n%s$%d\r\n%s\r\n"
            % (
                _HEAD_7, len(mid), mid,
                _F_ROUTING, _name_bulk(h.routing_key),
                _F_KIND, _KIND_BULKS[h.kind],
                _F_SOURCE, _name_bulk(h.source_service),
                _F_TARGET, _name_bulk(h.target_service),
                _F_TIMESTAMP, len(ts), ts,
                _F_BODY, len(body), body,
            )
        )  # fmt: skip
        return 15
    parts.append(
        b"%s$%d\r\n%s\r\n%s%s%s%s%s%s%s$%d\r\n%s\r\n%s$%d\r\n%s\r\n"
        % (
            _HEAD_6, len(mid), mid,
            _F_ROUTING, _name_bulk(h.routing_key),
            _F_KIND, _KIND_BULKS[h.kind],
            _F_SOURCE, _name_bulk(h.source_service),
            _F_TIMESTAMP, len(ts), ts,
            _F_BODY, len(body), body,
        )
    )  # fmt: skip
    return 13
