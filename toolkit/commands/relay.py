"""``toolkit relay --outbox URL``: move committed outbox rows to their channels."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from toolkit.commands._common import fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "relay",
        help="move committed outbox rows to their channels, in order, at least once",
        description="Relay the transactional outbox at --outbox (written by toolkit.outbox's "
        "outbox_for(conn) in the application's own transactions) to the channels, each on the "
        "pipe bound to it (docs/pipes.md). Order is kept per partition (channel and key); "
        "several relays may serve one PostgreSQL outbox at once. Broker and database outages are "
        "waited out with backoff; nothing is dropped. SIGTERM or SIGINT: finish the batch in "
        "hand, exit 0. Exit 2 on bad options or when the outbox's database cannot be reached "
        "at startup. See docs/delivery.md.",
    )
    parser.add_argument(
        "--outbox",
        required=True,
        metavar="URL",
        help="the outbox's database: postgresql://user@host:port/database, or "
        "sqlite:///relative/path.db, sqlite:////absolute/path.db (its table: schema PREFIX, "
        "table outbox on PostgreSQL; PREFIX_outbox on SQLite)",
    )
    add_pipe_flags(parser)
    parser.add_argument(
        "--batch-size", type=int, default=500, help="rows per batch (one transaction) (500)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.2,
        help="seconds between looks at an empty outbox (0.2)",
    )
    parser.add_argument("--until-empty", action="store_true", help="stop once the outbox is empty")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.base import TransportError
    from toolkit.outbox import Relay
    from toolkit.pipe_settings import PipeSettings
    from toolkit.pipes import Pipes

    try:
        bindings = bindings_from_args(args)
        pipes = Pipes(bindings, PipeSettings(prefix=args.prefix))
        relay = Relay(
            args.outbox,
            pipes,
            prefix=args.prefix,
            batch_size=args.batch_size,
            poll_interval=args.poll_interval,
        )
    except ValueError as exc:
        return fail(f"toolkit relay: {exc}")

    async def main() -> int:
        loop = asyncio.get_running_loop()
        try:
            await relay.check()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, relay.stop)
            print(
                f"relay: outbox {relay.where} (prefix {args.prefix}) to "
                f"{bindings.describe()}, batches of {args.batch_size}",
                file=sys.stderr,
                flush=True,
            )
            await relay.run(until_empty=args.until_empty)
            return 0
        finally:
            await pipes.close()

    try:
        return asyncio.run(main())
    except TransportError as exc:
        return fail(f"toolkit relay: {exc}")
