"""Log lines as JSON objects, one per line (``toolkit run --log-format json``).

Each line holds ``time`` (UTC, RFC 3339 with milliseconds), ``level``,
``logger`` and ``message``; inside a handler also the message being handled
(``message_id``, ``routing_key``, ``channel``, ``correlation_id``,
``delivery_count``) and, when a span is current, ``trace_id`` and
``span_id`` (the ids trace viewers show); ``exception`` with the traceback
when one is logged. Fields given with ``extra=`` are kept when they are JSON.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

import msgspec

from toolkit.context import CURRENT_DELIVERY

__all__ = ["JsonFormatter"]

#: LogRecord attributes that are not "extra" fields
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)
_encode: Final = msgspec.json.Encoder().encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        delivery = CURRENT_DELIVERY.get()
        if delivery is not None:
            h = delivery.envelope.headers
            line["message_id"] = h.message_id
            line["routing_key"] = h.routing_key
            line["channel"] = delivery.channel
            line["correlation_id"] = h.correlation_id or h.message_id
            line["delivery_count"] = delivery.delivery_count
        trace = sys.modules.get("opentelemetry.trace")
        if trace is not None:  # loaded: tracing may be on; never imported for a log line
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                line["trace_id"] = f"{context.trace_id:032x}"
                line["span_id"] = f"{context.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        try:
            return _encode(line).decode()
        except (TypeError, msgspec.EncodeError):
            return _encode({k: v if _jsonable(v) else repr(v) for k, v in line.items()}).decode()


def _jsonable(value: Any) -> bool:
    try:
        _encode(value)
    except (TypeError, msgspec.EncodeError):
        return False
    return True
