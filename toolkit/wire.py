"""Wire vocabulary: message kinds, the content type and the envelope's field names.

A leaf module: it imports nothing else of the toolkit. The envelope, the
transports and the generator's documents (AsyncAPI) all spell the wire form
with these names; ``docs/wire-format.md`` describes it for other languages.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "COMMAND",
    "EVENT",
    "F_BODY",
    "F_CAUSATION",
    "F_CONTENT_TYPE",
    "F_CORRELATION",
    "F_DELIVER_AT",
    "F_KIND",
    "F_MESSAGE_ID",
    "F_METADATA",
    "F_PRIORITY",
    "F_ROUTING_KEY",
    "F_SOURCE",
    "F_TARGET",
    "F_TIMESTAMP",
    "F_TRACEPARENT",
    "F_TRACESTATE",
    "JSON",
    "WIRE_FIELDS",
    "Kind",
]

Kind = Literal["command", "event"]
COMMAND: Final = "command"
EVENT: Final = "event"
JSON: Final = "application/json"

# Wire field names; also the order in which they are written.
F_MESSAGE_ID: Final = "message_id"
F_ROUTING_KEY: Final = "routing_key"
F_KIND: Final = "kind"
F_SOURCE: Final = "source_service"
F_TARGET: Final = "target_service"
F_TIMESTAMP: Final = "timestamp"
#: when a scheduled message is due: Unix time in milliseconds (docs/delivery.md#scheduled-messages)
F_DELIVER_AT: Final = "deliver_at"
#: 0 (the default, left out) to 9: a consumer with a backlog takes higher ones first
#: (docs/delivery.md#priorities)
F_PRIORITY: Final = "priority"
F_CONTENT_TYPE: Final = "content_type"
F_CORRELATION: Final = "correlation_id"
F_CAUSATION: Final = "causation_id"
F_METADATA: Final = "metadata"
#: W3C trace context (https://www.w3.org/TR/trace-context/), written when tracing is on
F_TRACEPARENT: Final = "traceparent"
F_TRACESTATE: Final = "tracestate"
F_BODY: Final = "body"
#: every wire field, in the order they are written (``deliver_at`` and ``priority``,
#: written after ``timestamp`` on scheduled and prioritized messages only, are apart:
#: pipes that store fields as columns keep them where they keep what they do not know)
WIRE_FIELDS: Final = (
    F_MESSAGE_ID,
    F_ROUTING_KEY,
    F_KIND,
    F_SOURCE,
    F_TARGET,
    F_TIMESTAMP,
    F_CONTENT_TYPE,
    F_CORRELATION,
    F_CAUSATION,
    F_METADATA,
    F_TRACEPARENT,
    F_TRACESTATE,
    F_BODY,
)
