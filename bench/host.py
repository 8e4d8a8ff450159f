"""One service host on two channels vs two single-channel runners, on one machine.

    python -m bench.host [--messages 200000] [--rounds 3]

A private redis-server holds a backlog of ``--messages`` small messages on
each of ticket_service's two channels (``ticket.create`` commands on
ticket_commands, ``user.registered`` events on user_events). Then, in
alternating rounds:

* host: one process, ``ServiceHost`` of ticket_service consuming both
  channels (what ``toolkit run ticket_service`` runs);
* runners: two processes, each consuming one channel (what ``toolkit run
  ticket_service --channel X`` runs, twice).

Each process subscribes, reports ready and waits for the go; the time is
from the go to the last acknowledgement of the last process to finish
(``until_empty``). Generated ``bind()``, no-op synchronous handlers, batches
of 100. The aim: the host holds at least 0.9x the throughput of the two runners.
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

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.redis_e2e import flush, private_redis  # noqa: E402

CHANNELS = ("ticket_commands", "user_events")
AIM = 0.9


def backlog(n: int) -> dict[str, list[Any]]:
    """``n`` envelopes per channel, as their publishers would send them."""
    from toolkit import Envelope, Headers, new_message_id

    encode = msgspec.json.encode
    now = int(time.time() * 1000)

    def envelope(key: str, kind: Any, target: str, body: bytes) -> Envelope:
        message_id = new_message_id()
        headers = Headers(message_id, key, kind, "user_service", now, target)
        return Envelope(headers, body)

    ticket = encode({"ticket_id": str(uuid.uuid4()), "subject": "s", "requester_email": "a@b.c"})
    user = encode(
        {
            "user_id": str(uuid.uuid4()),
            "email": "user@example.com",
            "full_name": "User",
            "registered_at": "2026-01-01T12:00:00+00:00",
        }
    )
    return {
        "ticket_commands": [
            envelope("ticket.create", "command", "ticket_service", ticket) for _ in range(n)
        ],
        "user_events": [envelope("user.registered", "event", "", user) for _ in range(n)],
    }


async def fill(url: str, n: int) -> None:
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(url)
    try:
        for channel, envelopes in backlog(n).items():
            await transport.ensure_group(channel, "ticket_service")
            for i in range(0, n, 1000):
                await transport.send(channel, envelopes[i : i + 1000])
    finally:
        await transport.close()


class Handlers:
    def on_ticket_create(self, message: Any, meta: Any) -> None:
        pass

    def on_user_registered(self, message: Any, meta: Any) -> None:
        pass

    def on_user_billing_changed(self, message: Any, meta: Any) -> None:
        pass


async def consume(url: str, channels: list[str]) -> dict[str, float]:
    """One process: subscribe, say READY, wait for the go, consume until empty."""
    import generated.ticket_service as ticket_service
    from generated.service_map import SERVICE_MAP
    from toolkit import RunOptions, ServiceHost
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(url)
    await transport.check()
    for channel in channels:
        await transport.ensure_group(channel, "ticket_service")
    options = RunOptions(until_empty=True, batch_size=100)
    host = ServiceHost(
        transport, ticket_service.bind(Handlers()), SERVICE_MAP, options, channels=channels
    )
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start = time.time()
    stats = await host.run()
    end = time.time()
    await transport.close()
    return {"start": start, "end": end, "handled": stats.handled}


def timed(url: str, groups: list[list[str]]) -> float:
    """Run one process per channel group at once; messages per second over all of them."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", "--url", url, *group],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for group in groups
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "READY":
                raise RuntimeError("a consumer did not start")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [json.loads(p.communicate(timeout=600)[0]) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    handled = sum(r["handled"] for r in results)
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    return handled / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="per channel")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--url")
    parser.add_argument("channels", nargs="*")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(consume(args.url, args.channels))), flush=True)
        return

    modes = {"host": [list(CHANNELS)], "runners": [[c] for c in CHANNELS]}
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    with private_redis("bench-host-") as url:
        print(
            f"redis-server {url}, {os.cpu_count()} CPUs, {args.messages:,} messages "
            f"on each of {', '.join(CHANNELS)}\n"
        )
        for round_ in range(1, args.rounds + 1):
            for mode, groups in modes.items():
                flush(url)
                asyncio.run(fill(url, args.messages))
                rate = timed(url, groups)
                rates[mode].append(rate)
                print(f"  round {round_}  {mode:<8} {rate:>9,.0f} msg/s")
    host, runners = (statistics.median(rates[m]) for m in modes)
    ratio = host / runners
    print(
        f"\nmedian: one host, two channels {host:,.0f} msg/s; "
        f"two single-channel runners {runners:,.0f} msg/s"
    )
    verdict = "met" if ratio >= AIM else "NOT met"
    print(f"ratio host / runners: {ratio:.2f}x   (aim >= {AIM}x: {verdict})")


if __name__ == "__main__":
    main()
