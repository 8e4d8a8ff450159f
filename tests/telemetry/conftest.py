"""Telemetry on, with the OpenTelemetry SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.postgres.conftest import postgres_url, schema
from tests.redis.conftest import make_transport, prefix, redis_server, redis_url
from toolkit import telemetry
from toolkit.telemetry.otel import Telemetry

__all__ = ["make_transport", "postgres_url", "prefix", "redis_server", "redis_url", "schema"]


@dataclass
class Otel:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    telemetry: Telemetry

    def points(self, name: str) -> dict[tuple[tuple[str, object], ...], object]:
        """The data points of metric ``name``: attributes (sorted) -> value (sums, gauges)
        or the point itself (histograms)."""
        found: dict[tuple[tuple[str, object], ...], object] = {}
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        key = tuple(sorted(point.attributes.items()))
                        found[key] = getattr(point, "value", point)
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    active = telemetry.enable(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Otel(spans, reader, active)
    finally:
        telemetry.disable()
        meter_provider.shutdown()
        tracer_provider.shutdown()
