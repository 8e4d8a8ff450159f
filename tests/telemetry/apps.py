"""An application for ``toolkit run`` in a child process, with an OpenTelemetry SDK
configured at import (as an application's own module would): its handler logs, and fails
on a ticket whose subject is ``fail``."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from toolkit import Delivery

trace.set_tracer_provider(TracerProvider())  # sampled spans, exported nowhere

log = logging.getLogger("shop")


class Shop:
    def on_ticket_create(self, message: Any, meta: Delivery) -> None:
        log.warning("handling %s", message.subject)
        if message.subject == "fail":
            raise RuntimeError("no printer")

    def on_user_registered(self, message: Any, meta: Delivery) -> None:
        pass

    def on_user_billing_changed(self, message: Any, meta: Delivery) -> None:
        pass
