"""`toolkit run --metrics-port 0 --log-format json` in a child process on a real Redis: the
Prometheus endpoint counts exactly, every log line is a JSON object with the ids."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import msgspec

from tests.redis.messages import ticket_create
from toolkit.channels.redis import RedisTransport

ROOT = Path(__file__).parents[2]


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_endpoint_and_json_logs(redis_url: str, prefix: str) -> None:
    def body(subject: str) -> bytes:
        return msgspec.json.encode(
            {"ticket_id": str(uuid.uuid4()), "subject": subject, "requester_email": "a@b.c"}
        )

    async def fill() -> None:
        transport = RedisTransport(redis_url, prefix=prefix)
        await transport.send(
            "ticket_commands",
            [ticket_create(n) for n in range(3)]
            + [ticket_create(body=body("fail")), ticket_create(body=b"{}")],
        )
        await transport.close()

    asyncio.run(fill())
    command = [
        sys.executable, "-m", "toolkit", "run", "ticket_service", "--app",
        "tests.telemetry.apps:Shop", "--url", redis_url, "--prefix", prefix,
        "--metrics-port", "0", "--metrics-host", "127.0.0.1", "--log-format", "json",
        "--max-attempts", "2", "--retry-base", "0.05", "--time-limit", "30", "-v",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    try:
        first = child.stderr.readline()
        found = re.fullmatch(r"metrics: (http://\S+/metrics)\n", first)
        assert found, first
        url = found.group(1)
        labels = '{toolkit_channel="ticket_commands",toolkit_group="ticket_service"}'
        deadline = time.monotonic() + 20
        samples: dict[str, float] = {}
        while time.monotonic() < deadline:
            samples = scrape(url)
            if samples.get(f"toolkit_messages_dead_lettered_total{labels}") == 2:
                break
            time.sleep(0.2)
        assert samples[f"toolkit_messages_handled_total{labels}"] == 3
        assert samples[f"toolkit_messages_failed_total{labels}"] == 2  # fail, twice
        assert samples[f"toolkit_messages_retried_total{labels}"] == 1
        assert samples[f"toolkit_messages_dead_lettered_total{labels}"] == 2  # fail, and {}
        assert samples[f"toolkit_messages_skipped_total{labels}"] == 0
        timed = (
            'toolkit_handler_duration_seconds_count{toolkit_channel="ticket_commands",'
            'toolkit_group="ticket_service",toolkit_outcome="ok",'
            'toolkit_routing_key="ticket.create"}'
        )
        assert samples[timed] == 3
        # Read from Redis by the poller when the subscription opened (then every 10s).
        assert samples[f"toolkit_consumer_lag{labels}"] in (0, 5)
        assert f"toolkit_consumer_pending{labels}" in samples
    finally:
        child.terminate()
        _, err = child.communicate(timeout=20)
    assert child.returncode == 0, err
    objects = []
    for line in err.splitlines():
        if line.startswith("{"):
            objects.append(json.loads(line))
        else:  # the startup summary alone is for people
            assert line.startswith("ticket_service: consuming ticket_commands"), line
    handling = [o for o in objects if o["logger"] == "shop"]
    assert len(handling) == 5  # three tickets, "fail" twice
    for line in handling:
        assert line["level"] == "WARNING" and line["routing_key"] == "ticket.create"
        assert re.fullmatch("[0-9a-f]{32}", line["trace_id"]), line
        assert re.fullmatch("[0-9a-f]{16}", line["span_id"]), line
        assert line["channel"] == "ticket_commands" and line["message_id"]
    assert {o["level"] for o in objects} >= {"INFO", "WARNING", "ERROR"}


def test_exposition_escapes_label_values_and_sums_histogram_buckets() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from toolkit.telemetry.prometheus import exposition

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    meter.create_counter("a.b", description="odd").add(2, {"k.x": 'say "hi"\n\\'})
    histogram = meter.create_histogram("took", unit="s")
    for value in (0.001, 0.003, 20.0):
        histogram.record(value)
    text = exposition(reader.get_metrics_data())
    assert "# HELP a_b_total odd\n# TYPE a_b_total counter\n" in text
    assert 'a_b_total{k_x="say \\"hi\\"\\n\\\\"} 2\n' in text
    assert "# TYPE took_seconds histogram\n" in text
    assert 'took_seconds_bucket{le="5.0"} 2\n' in text
    assert 'took_seconds_bucket{le="+Inf"} 3\n' in text
    assert "took_seconds_count 3\n" in text and "took_seconds_sum 20.004" in text
