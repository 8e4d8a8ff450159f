"""Traces and metrics through OpenTelemetry, off until :func:`enable` (``docs/observability.md``).

The runtime reads one name per message, :data:`ACTIVE`: None (the default)
costs a bus one attribute check per message it builds and a consumer one per
batch, and nothing else; nothing of OpenTelemetry is imported. :func:`enable`
(``toolkit run`` calls it when an OpenTelemetry SDK is configured, or for
``--metrics-port``) loads :mod:`toolkit.telemetry.otel`, which needs the
``opentelemetry-api`` package (the ``otel`` extra), and from then on:

* the bus opens a *publish* span per message it builds, named
  ``publish <routing key>``, a child of the span current where it was sent
  (inside a handler: the handling span), and writes that span's W3C trace
  context into the envelope (``traceparent``, ``tracestate``;
  ``docs/wire-format.md``), and counts the message per routing key;
* a consumer runs each handler inside a *process* span, ``process <routing
  key>``, whose parent is the publish span read from the envelope, and
  records how long the handler took;
* the consumers' counts (handled, skipped, retried, failed, dead-lettered)
  and, from transports that can tell (:class:`~toolkit.channels.base.ReportsStatus`),
  each group's lag and pending count are observable metrics.

Buses and consumers made before :func:`enable` are instrumented too: the
check is made per message (bus) and per batch (consumer), not at construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.telemetry.otel import Telemetry

__all__ = ["ACTIVE", "available", "configured", "disable", "enable"]

#: the telemetry in force, or None (off); read on the hot path, set by enable()/disable()
ACTIVE: Telemetry | None = None


def available() -> bool:
    """Whether the ``opentelemetry-api`` package can be imported."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


def configured() -> tuple[bool, bool]:
    """(tracing, metrics): whether an SDK's tracer and meter providers are set globally.

    The API's own providers (proxies and no-ops, what is there until an SDK
    or ``opentelemetry-instrument`` sets one) do not count; without the API,
    neither does anything.
    """
    if not available():
        return False, False
    from opentelemetry import metrics, trace

    def real(provider: Any) -> bool:
        return not type(provider).__module__.startswith(
            ("opentelemetry.trace", "opentelemetry.metrics")
        )

    return real(trace.get_tracer_provider()), real(metrics.get_meter_provider())


def enable(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    tracing: bool = True,
    metrics: bool = True,
    status_interval: float = 10.0,
) -> Telemetry:
    """Turn telemetry on, with the given providers or the global ones; returns it.

    ``tracing``/``metrics`` False leave that half off. ``status_interval``:
    seconds between two readings of each consumed channel's lag and pending
    count (for the gauges). Raises ImportError naming the ``otel`` extra when
    ``opentelemetry-api`` is not installed.
    """
    global ACTIVE
    try:
        from toolkit.telemetry.otel import Telemetry
    except ImportError as exc:
        raise ImportError(
            "toolkit telemetry needs the opentelemetry-api package: "
            "pip install 'smart-endpoints[otel]' (and an OpenTelemetry SDK to export)"
        ) from exc
    ACTIVE = Telemetry(
        tracer_provider=tracer_provider if tracing else None,
        meter_provider=meter_provider if metrics else None,
        tracing=tracing,
        metrics=metrics,
        status_interval=status_interval,
    )
    return ACTIVE


def disable() -> None:
    """Turn telemetry off: buses and consumers stop instrumenting at their next message or batch."""
    global ACTIVE
    if ACTIVE is not None:
        ACTIVE.close()
    ACTIVE = None
