"""Envelopes as AMQP messages, and back (``docs/wire-format.md``, ``docs/rabbitmq.md``).

An envelope travels as one AMQP message: every wire field but ``body`` is an
AMQP header of the same name with a string value (``message_id``,
``routing_key``, ``kind``, ...), and ``body`` is the message body. What the
wire cannot carry fails ``send`` exactly as on the other pipes (the checks of
:func:`toolkit.channels.memory.wire.wire_fields`), and what a receiver cannot
read back is dead-lettered with ``Envelope.from_fields``'s words.

Headers whose names start with ``x-`` belong to the broker (``x-delivery-count``,
``x-death``) or to the transport (``x-toolkit-deliveries``: deliveries before a
retry); they are not wire fields. A header another language wrote as a number,
a boolean or a nested table is read as its text (a table as JSON), so
``timestamp`` may be an integer and ``metadata`` a table of strings.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from toolkit.channels.memory.wire import unchanged_by_wire, wire_fields
from toolkit.envelope import Envelope
from toolkit.wire import F_BODY, F_PRIORITY

__all__ = [
    "DLQ_PREFIX",
    "F_ORIGINAL",
    "H_PRIOR",
    "dead_letter_headers",
    "fields_of",
    "original_headers",
    "priority_binding",
    "priority_of",
    "publishable",
    "split_dead_letter",
    "stored_fields",
    "to_amqp",
]

#: deliveries a message had before it went to wait for a retry (a fresh queue
#: message counts its own deliveries from zero again)
H_PRIOR: Final = "x-toolkit-deliveries"
#: dead letters: the toolkit's headers, each named with this prefix...
DLQ_PREFIX: Final = "dlq_"
#: ...and the original message's headers, as they were, in this nested table
F_ORIGINAL: Final = "dlq_original"

_JSON: Final = msgspec.json.Encoder()
#: the priority header's values that mean a priority queue (the envelope's spelling)
_PRIORITIES: Final = {str(p): p for p in range(1, 10)}


def priority_of(headers: Mapping[str, Any] | None) -> int:
    """The priority queue a message belongs in: its ``priority`` header, 0 for none or
    one the wire refuses (such a message is dead-lettered when received, in its turn)."""
    if not headers:
        return 0
    value = headers.get(F_PRIORITY)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return _PRIORITIES.get(value, 0) if isinstance(value, str) else 0


def priority_binding(priority: int) -> dict[str, Any]:
    """The arguments binding a priority queue to a headers exchange: the header as the
    envelope writes it (a decimal string)."""
    return {"x-match": "all", F_PRIORITY: str(priority)}


def to_amqp(envelope: Envelope) -> tuple[dict[str, Any], bytes]:
    """The headers and body of ``envelope``'s message; raises what ``send`` raises for
    an envelope the wire cannot carry (see :func:`~toolkit.channels.memory.wire.wire_fields`)."""
    if unchanged_by_wire(envelope):
        headers: dict[str, Any] = envelope.to_fields()
        return headers, headers.pop(F_BODY)
    wire = wire_fields(envelope)
    body = wire.pop(F_BODY)
    return {name: value.decode() for name, value in wire.items()}, body


def _text(value: Any) -> str | bytes:
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        try:
            return _JSON.encode(value).decode()
        except (TypeError, ValueError, UnicodeDecodeError):
            return str(value)
    return str(value)


def fields_of(headers: Mapping[str, Any] | None, body: bytes) -> dict[str, str | bytes]:
    """The wire fields of a message: its headers but the ``x-`` ones, as text, plus ``body``."""
    fields: dict[str, str | bytes] = {}
    if headers:
        for name, value in headers.items():
            if not name.startswith("x-"):
                fields[name] = value if value.__class__ is str else _text(value)
    fields[F_BODY] = body
    return fields


def stored_fields(headers: Mapping[str, Any] | None, body: bytes) -> dict[str, str | bytes]:
    """The wire fields as a dead letter keeps them: every value as bytes."""
    return {
        name: value.encode() if isinstance(value, str) else value
        for name, value in fields_of(headers, body).items()
    }


def publishable(value: Any) -> Any:
    """A header value as it can be published again: the client reads a string that is
    not UTF-8 as ``bytes`` but writes only ``bytearray`` (an AMQP byte array)."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {name: publishable(item) for name, item in value.items()}
    if isinstance(value, list):
        return [publishable(item) for item in value]
    return value


def original_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A message's headers without the broker's and the transport's (``x-``), as sent
    (and as they can be published again)."""
    if not headers:
        return {}
    return {
        name: publishable(value) for name, value in headers.items() if not name.startswith("x-")
    }


def dead_letter_headers(toolkit: Mapping[str, str], original: Mapping[str, Any]) -> dict[str, Any]:
    """The headers of a dead letter: ``dlq_<name>`` for each of the toolkit's fields and
    ``dlq_original``, a table holding the original headers exactly."""
    headers: dict[str, Any] = {
        DLQ_PREFIX + name: value for name, value in toolkit.items() if name != "original"
    }
    headers[F_ORIGINAL] = dict(original)
    return headers


def split_dead_letter(headers: Mapping[str, Any] | None) -> tuple[dict[str, str], dict[str, Any]]:
    """The toolkit's fields (without the prefix) and the original headers of a dead letter."""
    toolkit: dict[str, str] = {}
    original: dict[str, Any] = {}
    for name, value in (headers or {}).items():
        if name == F_ORIGINAL:
            original = dict(value) if isinstance(value, Mapping) else {}
        elif name.startswith(DLQ_PREFIX):
            text = _text(value)
            toolkit[name[len(DLQ_PREFIX) :]] = (
                text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            )
    return toolkit, original
