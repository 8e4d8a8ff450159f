"""Envelopes of the generated example system, built directly (fast, for bulk tests)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from toolkit import Envelope, Headers, new_message_id


def ticket_create(n: int = 0, *, body: bytes | None = None, **headers: Any) -> Envelope:
    """A ``ticket.create`` command for ticket_service (channel ticket_commands)."""
    if body is None:
        body = msgspec.json.encode(
            {"ticket_id": str(uuid.uuid4()), "subject": f"ticket {n}", "requester_email": "a@b.c"}
        )
    message_id = headers.pop("message_id", None) or new_message_id()
    return Envelope(
        Headers(
            message_id=message_id,
            routing_key=headers.pop("routing_key", "ticket.create"),
            kind=headers.pop("kind", "command"),
            source_service=headers.pop("source_service", "user_service"),
            timestamp_ms=int(time.time() * 1000),
            target_service=headers.pop("target_service", "ticket_service"),
            correlation_id=message_id,
            **headers,
        ),
        body,
    )


def user_registered(n: int = 0, **headers: Any) -> Envelope:
    """A ``user.registered`` event from user_service (channel user_events)."""
    body = msgspec.json.encode(
        {
            "user_id": str(uuid.uuid4()),
            "email": f"user{n}@example.com",
            "full_name": f"User {n}",
            "registered_at": "2026-01-01T12:00:00+00:00",
        }
    )
    message_id = headers.pop("message_id", None) or new_message_id()
    return Envelope(
        Headers(
            message_id=message_id,
            routing_key="user.registered",
            kind="event",
            source_service=headers.pop("source_service", "user_service"),
            timestamp_ms=int(time.time() * 1000),
            correlation_id=message_id,
            **headers,
        ),
        body,
    )
