"""End-to-end RabbitMQ benchmark: producer process -> RabbitMQ -> consumer process -> handler -> ack.

    python -m bench.rabbitmq_e2e [--count 50000] [--rounds 3]

Each contender uses a durable quorum queue, persistent messages, publisher
confirms, and acknowledges after handling; all run in one private vhost of
the local broker (``RABBITMQ_URL``, default guest on 127.0.0.1:5672), the
median of ``--rounds`` runs each, ratios taken in the same run:

* ours: ``DistributedBus.publish_events`` in batches of 100 (one confirmed
  burst each) -> the ``toolkit`` Runner of ticket_service in a child process
  (``toolkit run``'s runner: envelope parsing, routing, typed msgspec decode
  into the consumer's view class, handler, batched ack);
* (a) the best hand-written aio-pika loop: publish 100, await their confirms;
  consume with prefetch 100, msgspec decode, one ``ack(multiple=True)`` per 100;
* (b) FastStream 0.7's RabbitBroker: ``publish(persist=True)`` in gathers of
  100 -> a subscriber on a quorum queue (default ack policy: after handling).

Throughput is messages / (last acknowledgement - first publish). The
consumer's CPU seconds per message are reported too (the machine is shared:
ratios and CPU per message are the figures to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.redis_e2e import Event, event_payload  # noqa: E402

CHANNEL = "user_events"
GROUP = "ticket_service"


def _ready() -> None:
    print("READY", flush=True)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- ours --------------------------------------------------------------------------------


async def ours_produce(url: str, n: int, prefix: str) -> None:
    from generated.user_service import UserRegistered, UserServicePublisher
    from toolkit.channels.rabbitmq import RabbitTransport

    transport = RabbitTransport(url, prefix=prefix)
    bus = UserServicePublisher(transport).bus
    events = [msgspec.convert(event_payload(i), UserRegistered) for i in range(min(n, 1000))]
    for start in range(0, n, 100):
        await bus.publish_events(
            "user.registered", [events[i % len(events)] for i in range(start, min(start + 100, n))]
        )
    await transport.close()


async def ours_consume(url: str, n: int, prefix: str) -> dict[str, Any]:
    import generated.ticket_service as ticket_service
    from toolkit import Runner, RunOptions
    from toolkit.channels.rabbitmq import RabbitTransport

    transport = RabbitTransport(url, prefix=prefix)

    class Handlers:
        def on_user_registered(self, message: Any, meta: Any) -> None:
            pass

        def on_user_billing_changed(self, message: Any, meta: Any) -> None:
            pass

        def on_ticket_create(self, message: Any, meta: Any) -> None:
            pass

    runner = Runner(
        transport, CHANNEL, ticket_service.bind(Handlers()), RunOptions(limit=n, batch_size=100)
    )
    await runner.consumer.subscription()
    _ready()
    cpu = _cpu()
    await runner.run()
    end = time.time()
    cpu = _cpu() - cpu
    await transport.close()
    return {"end": end, "cpu": cpu}


# -- (a) hand-written aio-pika -----------------------------------------------------------


async def _raw_queue(channel: Any, prefix: str) -> Any:
    return await channel.declare_queue(
        f"{prefix}.raw", durable=True, arguments={"x-queue-type": "quorum"}
    )


async def raw_produce(url: str, n: int, prefix: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    await _raw_queue(channel, prefix)
    encode = msgspec.json.encode
    payloads = [encode(event_payload(i)) for i in range(min(n, 1000))]
    exchange = channel.default_exchange
    for start in range(0, n, 100):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        payloads[i % len(payloads)],
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=f"{prefix}.raw",
                )
                for i in range(start, min(start + 100, n))
            )
        )
    await connection.close()


async def raw_consume(url: str, n: int, prefix: str) -> dict[str, Any]:
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=100)
    queue = await _raw_queue(channel, prefix)
    decode = msgspec.json.Decoder(Event).decode
    done = asyncio.Event()
    handled = 0

    async def on_message(message: Any) -> None:
        nonlocal handled
        decode(message.body)
        handled += 1
        if handled % 100 == 0 or handled == n:
            await message.ack(multiple=True)
        if handled >= n:
            done.set()

    _ready()
    cpu = _cpu()
    await queue.consume(on_message)
    await done.wait()
    end = time.time()
    cpu = _cpu() - cpu
    await connection.close()
    return {"end": end, "cpu": cpu}


# -- (b) FastStream ----------------------------------------------------------------------


def _fs_queue(prefix: str) -> Any:
    from faststream.rabbit import QueueType, RabbitQueue

    return RabbitQueue(f"{prefix}.faststream", durable=True, queue_type=QueueType.QUORUM)


async def faststream_produce(url: str, n: int, prefix: str) -> None:
    from faststream.rabbit import RabbitBroker

    broker = RabbitBroker(url, logger=None)
    await broker.connect()
    queue = _fs_queue(prefix)
    await broker.declare_queue(queue)
    payloads = [event_payload(i) for i in range(min(n, 1000))]
    for start in range(0, n, 100):
        await asyncio.gather(
            *(
                broker.publish(payloads[i % len(payloads)], queue, persist=True)
                for i in range(start, min(start + 100, n))
            )
        )
    await broker.stop()


async def faststream_consume(url: str, n: int, prefix: str) -> dict[str, Any]:
    from faststream.rabbit import RabbitBroker
    from pydantic import BaseModel

    class PydanticEvent(BaseModel):
        user_id: uuid.UUID
        email: str
        full_name: str

    broker = RabbitBroker(url, logger=None)
    done = asyncio.Event()
    count = 0

    @broker.subscriber(_fs_queue(prefix))
    async def handle(event: PydanticEvent) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    await broker.start()
    _ready()
    cpu = _cpu()
    await done.wait()
    end = time.time()
    cpu = _cpu() - cpu
    await asyncio.sleep(0.2)  # the last acknowledgement goes out
    await broker.stop()
    return {"end": end, "cpu": cpu}


# -- plumbing ----------------------------------------------------------------------------

ROLES = {
    "ours": (ours_produce, ours_consume),
    "raw": (raw_produce, raw_consume),
    "faststream": (faststream_produce, faststream_consume),
}


def child(role: str, side: str, url: str, n: int, prefix: str) -> None:
    produce, consume = ROLES[role]
    if side == "produce":
        start = time.time()
        asyncio.run(produce(url, n, prefix))
        print(json.dumps({"start": start}), flush=True)
    else:
        print(json.dumps(asyncio.run(consume(url, n, prefix))), flush=True)


def run_pair(role: str, url: str, n: int) -> dict[str, float]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    base = [sys.executable, "-m", "bench.rabbitmq_e2e", "--child", role, "--url", url]
    base += ["--count", str(n), "--prefix", prefix]
    consumer = subprocess.Popen(
        [*base, "--side", "consume"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert consumer.stdout is not None
    line = consumer.stdout.readline()
    while line and line.strip() != "READY":
        line = consumer.stdout.readline()
    if not line:
        consumer.kill()
        raise RuntimeError(f"{role} consumer did not start")
    try:
        producer = subprocess.run(
            [*base, "--side", "produce"],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=900,
            cwd=ROOT,
        )
        started = json.loads(producer.stdout.strip().splitlines()[-1])["start"]
        out, _ = consumer.communicate(timeout=900)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    result = json.loads(out.strip().splitlines()[-1])
    elapsed = result["end"] - started
    return {"elapsed": elapsed, "rate": n / elapsed, "cpu_us": result["cpu"] / n * 1e6}


def private_vhost(url: str) -> tuple[str, str | None]:
    """The URL of a vhost made for this run (deleted after), or ``url`` itself."""
    name = f"toolkit-bench-{uuid.uuid4().hex[:8]}"
    user = urlsplit(url).username or "guest"
    try:
        for args in (["add_vhost", name], ["set_permissions", "-p", name, user, ".*", ".*", ".*"]):
            subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return url, None
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe=""))), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--side")
    parser.add_argument(
        "--url", default=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--prefix")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.side, args.url, args.count, args.prefix)
        return
    url, vhost = private_vhost(args.url)
    try:
        import faststream  # noqa: F401

        roles = ["raw", "ours", "faststream"]
    except ImportError:
        roles = ["raw", "ours"]
        print('FastStream not installed (pip install "faststream[rabbit]>=0.7,<0.8"): skipped')
    print(
        f"RabbitMQ, quorum queues, {args.count} small events (user.registered), {os.cpu_count()} CPUs"
    )
    rates: dict[str, list[float]] = {r: [] for r in roles}
    cpus: dict[str, list[float]] = {r: [] for r in roles}
    try:
        for round_ in range(args.rounds):
            for role in roles:
                result = run_pair(role, url, args.count)
                rates[role].append(result["rate"])
                cpus[role].append(result["cpu_us"])
                print(
                    f"  round {round_ + 1} {role:<11} {result['rate']:>8,.0f} msg/s, "
                    f"consumer {result['cpu_us']:.0f} µs CPU/msg"
                )
    finally:
        if vhost is not None:
            subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, check=False)
    median = {role: statistics.median(rates[role]) for role in roles}
    print("\nmedian of", args.rounds)
    for role in roles:
        print(
            f"  {role:<11} {median[role]:>8,.0f} msg/s, consumer "
            f"{statistics.median(cpus[role]):.0f} µs CPU/msg"
        )
    print(f"\nours / hand-written aio-pika: {median['ours'] / median['raw']:.2f}x (goal >= 1.0x)")
    if "faststream" in median:
        print(
            f"ours / FastStream:            {median['ours'] / median['faststream']:.2f}x (goal >= 1.5x)"
        )


if __name__ == "__main__":
    main()
