"""``GET /metrics`` in the Prometheus text format, for users without a collector.

``toolkit run --metrics-port N`` serves what an OpenTelemetry SDK
:class:`~opentelemetry.sdk.metrics.export.InMemoryMetricReader` holds,
collected on each scrape: the toolkit's metrics and whatever else the
application records through the same meter provider. Why not
``opentelemetry-exporter-prometheus``: it is a pre-release (0.x "b") package
that pulls in ``prometheus_client`` and its own HTTP server, for what is
fifty lines of text formatting here; the SDK is needed either way.

Names follow the Prometheus conventions the OpenTelemetry exporter uses:
dots become underscores, seconds get ``_seconds``, monotonic sums ``_total``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    MetricsData,
    Sum,
)

__all__ = ["MetricsServer", "exposition"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_BAD: Final = re.compile(r"[^a-zA-Z0-9_:]")
_UNITS: Final = {"s": "seconds", "ms": "milliseconds", "By": "bytes"}


def _name(name: str, unit: str) -> str:
    name = _BAD.sub("_", name)
    suffix = _UNITS.get(unit)
    if suffix and not name.endswith("_" + suffix):
        name += "_" + suffix
    return name


def _labels(attributes: Any, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = [(_BAD.sub("_", str(k)), v) for k, v in sorted((attributes or {}).items())]
    pairs.extend(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(_text(v))}"' for k, v in pairs) + "}"


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def exposition(data: MetricsData | None) -> str:
    """The Prometheus text exposition (format 0.0.4) of collected metrics."""
    lines: list[str] = []
    seen: set[str] = set()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                lines.extend(_metric(metric, seen))
    return "\n".join(lines) + "\n" if lines else ""


def _metric(metric: Any, seen: set[str]) -> Iterable[str]:
    data = metric.data
    name = _name(metric.name, metric.unit)
    if isinstance(data, Sum) and data.is_monotonic:
        name, kind = (name if name.endswith("_total") else name + "_total"), "counter"
    elif isinstance(data, (Sum, Gauge)):
        kind = "gauge"
    elif isinstance(data, Histogram):
        kind = "histogram"
    else:  # exponential histograms and what may come: not in this simple format
        return
    if name not in seen:
        seen.add(name)
        if metric.description:
            yield f"# HELP {name} {_escape(metric.description)}"
        yield f"# TYPE {name} {kind}"
    for point in data.data_points:
        if kind != "histogram":
            yield f"{name}{_labels(point.attributes)} {_number(point.value)}"
            continue
        running = 0
        bounds = [*point.explicit_bounds, float("inf")]
        for bound, count in zip(bounds, point.bucket_counts, strict=True):
            running += count
            le = (("le", _number(float(bound))),)
            yield f"{name}_bucket{_labels(point.attributes, le)} {running}"
        yield f"{name}_sum{_labels(point.attributes)} {_number(point.sum)}"
        yield f"{name}_count{_labels(point.attributes)} {point.count}"


class MetricsServer:
    """A meter provider whose metrics ``GET /metrics`` serves from a thread of its own
    (scrapes are answered even while the event loop is busy)."""

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        reader = self.reader

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "try /metrics")
                    return
                body = exposition(reader.get_metrics_data()).encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # scrapes every few seconds would drown the service's own logs

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="toolkit-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.meter_provider.shutdown()
