"""Deduplication's cost on Redis: the consumer's CPU per message with it on and off.

    python -m bench.dedup [--messages 30000] [--rounds 3]

On one private redis-server, in one run, rounds interleaved: ``toolkit run``
(bench.redis_e2e's consumer, a real child process) drains a prefilled stream
with and without ``--deduplicate 24h``; CPU time per message as
``bench.redis_e2e`` measures it (user + system of the process, less a run over
an empty stream). With deduplication, each batch is checked (by the read itself
over a backlog, else one ``ZMSCORE``) and costs a record write per
``RECORD_EVERY`` messages (toolkit/deduplication.py), whose reply is read with
the next read (toolkit/channels/redis/dedup.py). The
reference is the same consumer with deduplication off; the hand-written sync
consumer is printed beside it for scale.
"""

from __future__ import annotations

import argparse
import statistics

from bench.redis_e2e import consumer_cpu, private_redis

ON = ("--deduplicate", "24h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.messages
    runs: dict[str, list[float]] = {"off": [], "on": [], "sync": []}
    with private_redis("bench-dedup-") as url:
        print(f"redis-server {url}, {n:,} messages, median of {args.rounds} rounds\n")
        for round_ in range(1, args.rounds + 1):
            runs["off"].append(consumer_cpu("ours", url, n))
            runs["on"].append(consumer_cpu("ours", url, n, ON))
            runs["sync"].append(consumer_cpu("sync", url, n))
            print(
                f"  round {round_}: off {runs['off'][-1]:.1f}, on {runs['on'][-1]:.1f}, "
                f"sync {runs['sync'][-1]:.1f} us/msg",
                flush=True,
            )
    off, on, sync = (statistics.median(runs[k]) for k in ("off", "on", "sync"))
    print("\nconsumer CPU per message (toolkit run draining a prefilled stream):")
    print(f"  deduplication off        {off:6.1f} us/msg   {off / sync:5.2f}x sync")
    print(f"  --deduplicate 24h        {on:6.1f} us/msg   {on / sync:5.2f}x sync")
    print(f"  hand-written sync        {sync:6.1f} us/msg")
    print(f"  deduplication costs {on - off:+.1f} us/msg ({on / off:.2f}x off)")


if __name__ == "__main__":
    main()
