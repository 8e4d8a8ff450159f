"""``toolkit run``'s observability flags: ``--metrics-port``, ``--metrics-host``, ``--log-format``.

Telemetry (:mod:`toolkit.telemetry`) is turned on when ``--metrics-port`` is
given or when an OpenTelemetry SDK is configured once the application module
is imported (its own code, or ``opentelemetry-instrument toolkit run ...``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

__all__ = ["TelemetryError", "add_telemetry_flags", "start_telemetry", "use_log_format"]


class TelemetryError(ValueError):
    """The flags ask for what cannot be had (no SDK installed, the port taken)."""


def add_telemetry_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("observability (docs/observability.md)")
    group.add_argument(
        "--metrics-port",
        type=int,
        help="serve the metrics at GET /metrics in the Prometheus text format on this port "
        "(0: any free one, shown at startup); needs the opentelemetry-sdk package",
    )
    group.add_argument(
        "--metrics-host", default="0.0.0.0", help="address for --metrics-port (all interfaces)"
    )
    group.add_argument(
        "--log-format",
        choices=("plain", "json"),
        default="plain",
        help="plain lines for people (default), or one JSON object per line with the message "
        "id, routing key and trace ids",
    )


def use_log_format(log_format: str) -> None:
    """Switch the root logger's handlers to ``log_format``."""
    if log_format != "json":
        return
    from toolkit.telemetry.logs import JsonFormatter

    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())


def start_telemetry(port: int | None, host: str) -> Callable[[], None]:
    """Turn telemetry on when asked or configured; returns what turns it off again."""
    from toolkit import telemetry

    tracing, metrics = telemetry.configured()
    if port is None and not (tracing or metrics):
        return lambda: None
    server = None
    meter_provider = None
    if port is not None:
        if not 0 <= port <= 65535:
            raise TelemetryError(f"--metrics-port must be between 0 and 65535, not {port}")
        try:
            from toolkit.telemetry.prometheus import MetricsServer
        except ImportError:
            raise TelemetryError(
                "--metrics-port needs the OpenTelemetry SDK: pip install opentelemetry-sdk"
            ) from None
        try:
            server = MetricsServer(port, host)
        except OSError as exc:
            raise TelemetryError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
        meter_provider = server.meter_provider
        if not metrics:
            # The application's own metrics go to the same endpoint.
            from opentelemetry import metrics as otel_metrics

            otel_metrics.set_meter_provider(meter_provider)
        print(f"metrics: http://{host}:{server.port}/metrics", file=sys.stderr, flush=True)
    telemetry.enable(tracing=tracing, meter_provider=meter_provider)

    def stop() -> None:
        telemetry.disable()
        if server is not None:
            server.close()

    return stop
