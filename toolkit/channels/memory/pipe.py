"""Opening an in-memory pipe from ``memory://NAME``: one broker per name, in this process.

Transports opened with the same name share their channels, as two
connections to one server would; useful in tests of pipe bindings.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from toolkit.channels.base import MAX_MESSAGE_BYTES
from toolkit.channels.memory.transport import InMemoryTransport
from toolkit.pipe_settings import PipeSettings

__all__ = ["open_transport"]

_BROKERS: dict[str, InMemoryTransport] = {}


def open_transport(url: str, settings: PipeSettings) -> InMemoryTransport:
    name = urlsplit(url).netloc or "default"
    broker = _BROKERS.get(name)
    if broker is None:
        broker = InMemoryTransport(
            max_message_bytes=settings.max_message_bytes or MAX_MESSAGE_BYTES
        )
        _BROKERS[name] = broker
    return broker
