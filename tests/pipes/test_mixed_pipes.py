"""A system whose channels travel on several pipes at once, and a channel moved by configuration.

The shop of ``tests/fixtures_host`` (three services, four channels) runs as
``toolkit run`` processes. Which pipe carries each channel is set only through
the environment (``TOOLKIT_PIPE_<NAME>``, ``TOOLKIT_CHANNEL_<CHANNEL>``): the
schemas, the generated code and the application stay as they are.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.redis.server import RedisServer
from tests.redis.test_host import ROOT, Processes, project, python, wait_for
from toolkit.pipe_settings import redact

SERVICES = ("order_service", "shipping_service", "billing_service")
CHANNELS = ("order_commands", "shipping_orders", "billing_orders", "billing_shipments")
EXPECTED = {
    ("order_service", "order.place"): 1,
    ("shipping_service", "order.placed"): 1,
    ("billing_service", "order.placed"): 1,
    ("billing_service", "shipment.sent"): 1,
}


@pytest.fixture
def processes(tmp_path: Path) -> Any:
    running = Processes(tmp_path)
    yield running
    running.kill_left()


@pytest.fixture
def second_redis(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path / "second").start()
    yield server
    server.stop()


def records(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def run_shop(
    shop: Path, processes: Processes, log: Path, url: str, prefix: str, env: dict[str, str]
) -> Counter[tuple[str, str]]:
    """Start the three services, send one order, wait for its four handlings, stop them all."""
    before = len(records(log))
    for service in SERVICES:
        args = ["run", service, "--app", f"shop:{service}", "--url", url, "--prefix", prefix]
        processes.start(service, args, shop, TOOLKIT_TEST_LOG=str(log), **env)
    order_id = str(uuid.uuid4())
    python("shop.py", url, prefix, order_id, "acme", cwd=shop, **env)
    wait_for(lambda: len(records(log)) >= before + 4, what="four handlings")
    processes.stop_all()  # graceful: what was handled is acknowledged
    processes.running.clear()
    return Counter((r["service"], r["key"]) for r in records(log)[before:])


def test_channels_spread_over_pipes_and_moved_between_them_by_configuration_only(
    tmp_path: Path,
    processes: Processes,
    redis_url: str,
    postgres_url: str,
    schema: str,
    amqp_url: str,
    second_redis: RedisServer,
) -> None:
    prefix = schema  # one name for all: the Redis keys' prefix and the PostgreSQL schema
    shop = project(tmp_path, ROOT / "tests" / "fixtures_host")
    log = tmp_path / "handled.jsonl"

    # Every channel on the default pipe.
    assert run_shop(shop, processes, log, redis_url, prefix, {}) == EXPECTED

    # The same system with its channels spread over Redis, RabbitMQ and PostgreSQL at
    # once: configuration only.
    env = {
        "TOOLKIT_PIPE_PG": postgres_url,
        "TOOLKIT_PIPE_RABBIT": amqp_url,
        "TOOLKIT_CHANNEL_ORDER_COMMANDS": "rabbit",
        "TOOLKIT_CHANNEL_BILLING_SHIPMENTS": "rabbit",
        "TOOLKIT_CHANNEL_SHIPPING_ORDERS": "pg",
    }
    assert run_shop(shop, processes, log, redis_url, prefix, env) == EXPECTED
    summary = processes.err("billing_service").splitlines()[0]
    assert (
        f"consuming billing_orders, billing_shipments on {redis_url} (billing_orders), "
        f"{redact(amqp_url)} (billing_shipments)"
    ) in summary
    assert f"consuming shipping_orders on {postgres_url} " in processes.err("shipping_service")
    assert f"consuming order_commands on {redact(amqp_url)} " in processes.err("order_service")

    # And one more move, back to Redis but another server: configuration only again.
    env = {
        "TOOLKIT_PIPE_SECOND": second_redis.url,
        "TOOLKIT_CHANNEL_ORDER_COMMANDS": "second",
        "TOOLKIT_CHANNEL_BILLING_SHIPMENTS": "second",
    }
    assert run_shop(shop, processes, log, redis_url, prefix, env) == EXPECTED
    moved = redis.Redis.from_url(second_redis.url)
    try:
        assert sorted(k.decode() for k in moved.keys(f"{prefix}:*")) == [
            f"{prefix}:{{billing_shipments}}",
            f"{prefix}:{{order_commands}}",
        ]
    finally:
        moved.close()
