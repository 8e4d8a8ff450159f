"""What telemetry costs: the in-memory publish -> dispatch -> handler loop of
``bench.inmemory`` with telemetry off, with metrics only, and with traces and
metrics through the OpenTelemetry SDK (a batch span processor whose exporter
drops everything, an in-memory metric reader never collected during the run).
Interleaved repeats in one run; ratios against "off" are what to compare.

The "off" figure includes the one check the hot path makes
(``toolkit.telemetry.ACTIVE is not None``); its own cost is timed alone too,
as nanoseconds and as a share of a message's CPU time.

``--redis URL`` measures the same over Redis Streams too (publishes of a
round gathered, so they share a round trip, then consumed), where the
pipe's I/O is part of every message, as in production.

    python -m bench.telemetry [--messages N] [--repeat R] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import timeit
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.inmemory import toolkit_loop
from toolkit import telemetry


class DropAll(SpanExporter):
    """An exporter that sends nowhere: the SDK's own cost, not a collector's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def mode_off() -> Callable[[], None]:
    telemetry.disable()
    return lambda: None


def mode_metrics() -> Callable[[], None]:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry.enable(tracing=False, meter_provider=provider)

    def done() -> None:
        telemetry.disable()
        provider.shutdown()

    return done


def mode_traces() -> Callable[[], None]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DropAll()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry.enable(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def done() -> None:
        telemetry.disable()
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return done


MODES: dict[str, Callable[[], Callable[[], None]]] = {
    "off (no SDK)": mode_off,
    "metrics (SDK)": mode_metrics,
    "traces + metrics (SDK)": mode_traces,
}


async def redis_loop(url: str, n: int, batch: int) -> float:
    """bench.inmemory's loop over Redis: each round's publishes gathered, then consumed."""
    from bench.inmemory import event
    from toolkit import (
        ChannelSpec,
        Consumer,
        Delivery,
        Dispatcher,
        DistributedBus,
        EventRoute,
        Route,
        ServiceMap,
    )
    from toolkit.channels.redis import RedisTransport

    service_map = ServiceMap(
        channels=[ChannelSpec("user_events", "stream", ("ticket_service",))],
        command_routes={},
        event_routes=[EventRoute("user_events", "ticket_service", ("user.*",))],
        events={"user.registered": "user_service"},
    )
    transport = RedisTransport(url, prefix=f"benchtel{time.monotonic_ns()}")
    bus = DistributedBus("user_service", service_map, transport)
    seen = 0

    def on_user_registered(message: Any, meta: Delivery) -> None:
        nonlocal seen
        seen += 1

    from bench.inmemory import UserRegistered

    dispatcher = Dispatcher(
        "ticket_service",
        [Route("user.registered", "event", UserRegistered, on_user_registered)],
        service_map=service_map,
    )
    consumer = Consumer(transport, "user_events", dispatcher, batch_size=batch)
    await consumer.subscription()
    message = event()
    start = time.perf_counter()
    try:
        for _ in range(n // batch):
            await asyncio.gather(
                *(bus.publish_event("user.registered", message) for _ in range(batch))
            )
            await consumer.run(limit=batch, until_empty=True)
        elapsed = time.perf_counter() - start
    finally:
        await consumer.close()
        await transport.redis.delete(transport.keys("user_events").stream)
        await transport.close()
    assert seen == n // batch * batch, seen
    return seen / elapsed


def measure(
    mode: Callable[[], Callable[[], None]], n: int, batch: int, redis_url: str | None = None
) -> tuple[float, float]:
    """(messages per second, CPU microseconds per message)."""
    done = mode()
    try:
        gc.collect()
        cpu = time.process_time()
        loop = toolkit_loop(n, batch) if redis_url is None else redis_loop(redis_url, n, batch)
        rate = asyncio.run(loop)
        cpu = time.process_time() - cpu
    finally:
        done()
    return rate, cpu / n * 1e6


def check_cost() -> float:
    """Nanoseconds of the hot path's check when telemetry is off."""
    telemetry.disable()
    namespace: dict[str, Any] = {"telemetry": telemetry}
    loops = 2_000_000
    best = min(
        timeit.repeat("telemetry.ACTIVE is not None", globals=namespace, number=loops, repeat=5)
    )
    empty = min(timeit.repeat("pass", number=loops, repeat=5))
    return max(best - empty, 0.0) / loops * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis", metavar="URL", help="also over Redis Streams at URL")
    args = parser.parse_args()
    pipes: list[tuple[str, str | None]] = [("in-memory", None)]
    if args.redis:
        pipes.append(("Redis Streams", args.redis))
    off_cpu = 0.0
    for pipe, url in pipes:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):  # interleaved: the machine's noise hits every mode alike
            for name, mode in MODES.items():
                rate, cpu = measure(mode, args.messages, args.batch, url)
                old = best.get(name)
                best[name] = (max(rate, old[0]), min(cpu, old[1])) if old else (rate, cpu)
        off_rate, off_cpu_here = best["off (no SDK)"]
        off_cpu = off_cpu or off_cpu_here
        print(
            f"telemetry overhead, {pipe} publish->dispatch->handler, {args.messages:,} "
            f"messages, best of {args.repeat} (interleaved)"
        )
        print(f"  {'mode':<24}{'msg/s':>12}{'CPU us/msg':>12}{'rate vs off':>13}{'CPU vs off':>12}")
        for name, (rate, cpu) in best.items():
            print(
                f"  {name:<24}{rate:>12,.0f}{cpu:>12.2f}{rate / off_rate:>12.3f}x"
                f"{cpu / off_cpu_here:>11.3f}x"
            )
    check = check_cost()
    # Per message: one check in the bus; the consumer's is per batch.
    share = check / 1000 / off_cpu * (1 + 1 / args.batch)
    print(
        f"the check when off: {check:.1f} ns per message = {share:.2%} of an in-memory "
        "message's CPU time (off)"
    )


if __name__ == "__main__":
    main()
