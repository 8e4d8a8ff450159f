"""Handler implementations of the generated ticket_service, for tests that run consumers.

``Recorder`` (for ``toolkit run --app tests.redis.apps:Recorder`` in a child
process) appends ``<message id> <delivery count>`` per handled message to the
file named by ``TOOLKIT_TEST_LOG``, with one unbuffered O_APPEND write: a line
is on disk as soon as the handler returns, even if the process is then killed.
``TOOLKIT_TEST_DELAY`` (seconds) makes each message take that long;
``TOOLKIT_TEST_TIMES=1`` adds ``<wall-clock ms when handled> <deliver_at ms>`` to each
line (scheduled messages: ``tests.pipes.crash.read_times``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from toolkit import Delivery, Dispatcher, Route


class Recorder:
    def __init__(self) -> None:
        self._fd = os.open(os.environ["TOOLKIT_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._delay = float(os.environ.get("TOOLKIT_TEST_DELAY", "0"))
        self._times = os.environ.get("TOOLKIT_TEST_TIMES") == "1"

    def _record(self, meta: Delivery) -> None:
        if self._delay:
            time.sleep(self._delay)
        line = f"{meta.message_id} {meta.delivery_count}"
        if self._times:
            line += f" {time.time_ns() // 1_000_000} {meta.headers.deliver_at_ms}"
        os.write(self._fd, f"{line}\n".encode())

    def on_ticket_create(self, message: Any, meta: Delivery) -> None:
        self._record(meta)

    def on_user_registered(self, message: Any, meta: Delivery) -> None:
        self._record(meta)

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None:
        self._record(meta)


class Crasher(Recorder):
    """A ``Recorder`` whose process dies (``os._exit(3)``, no cleanup, like a segfault or
    an OOM kill) on a ticket whose subject is ``crash``."""

    def on_ticket_create(self, message: Any, meta: Delivery) -> None:
        self._record(meta)
        if message.subject == "crash":
            os._exit(3)


class Memory:
    """In-process handlers: records deliveries in lists; ``behaviour`` may raise."""

    def __init__(self, behaviour: Callable[[Any, Delivery], None] | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self.messages: list[Any] = []
        self.behaviour = behaviour

    def _handle(self, message: Any, meta: Delivery) -> None:
        if self.behaviour is not None:
            self.behaviour(message, meta)
        self.deliveries.append(meta)
        self.messages.append(message)

    def on_ticket_create(self, message: Any, meta: Delivery) -> None:
        self._handle(message, meta)

    def on_user_registered(self, message: Any, meta: Delivery) -> None:
        self._handle(message, meta)

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None:
        self._handle(message, meta)

    @property
    def ids(self) -> list[str]:
        return [d.message_id for d in self.deliveries]


#: user.registered events that HAND_MADE handled
HAND_MADE_HANDLED: list[Delivery] = []
#: a dispatcher of ticket_service made by hand, without the service map
HAND_MADE = Dispatcher(
    "ticket_service",
    [Route("user.registered", "event", dict, lambda m, meta: HAND_MADE_HANDLED.append(meta))],
)
