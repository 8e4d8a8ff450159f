"""``toolkit dlq list|show|replay|purge CHANNEL``: a Redis channel's dead letters."""

from __future__ import annotations

import argparse
import asyncio
import datetime
from typing import Any

from toolkit.commands._common import fail
from toolkit.commands._redis import add_redis_flags, redis_url_from


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "dlq",
        help="list, show, replay or purge a channel's dead letters (Redis)",
        description="Dead letters of a Redis channel: messages rejected as invalid or whose "
        "handler failed on every attempt.",
    )
    actions = parser.add_subparsers(dest="dlq_action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help, description=help)
        p.add_argument("channel", help="channel name, e.g. ticket_commands")
        add_redis_flags(p)
        return p

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--routing-key", help="only dead letters of this routing key")
        p.add_argument("--count", type=int, help="at most this many (oldest first)")

    listing = action("list", "list dead letters, oldest first")
    filters(listing)
    show = action("show", "show one dead letter: headers, reason, traceback and body")
    show.add_argument("id", help="dead-letter id (first column of `dlq list`)")
    replay = action(
        "replay",
        "send dead letters back to their channel (same message id, fresh attempt count)",
    )
    replay.add_argument(
        "ids", nargs="*", help="dead-letter ids (default: those the filters select)"
    )
    filters(replay)
    replay.add_argument("--all", action="store_true", help="every dead letter of the channel")
    purge = action("purge", "delete dead letters for good")
    purge.add_argument("ids", nargs="*", help="dead-letter ids (default: those the filters select)")
    filters(purge)
    purge.add_argument("--all", action="store_true", help="every dead letter of the channel")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.redis import RedisUnavailable

    if args.dlq_action in ("replay", "purge"):
        selected = bool(args.ids) or args.all or args.routing_key or args.count is not None
        if not selected:
            return fail(f"toolkit dlq {args.dlq_action}: give ids, --routing-key, --count or --all")
    try:
        return asyncio.run(_run(args))
    except RedisUnavailable as exc:
        return fail(f"toolkit dlq: {exc}")


async def _run(args: argparse.Namespace) -> int:
    from toolkit.channels.redis import RedisTransport

    transport = RedisTransport(redis_url_from(args), prefix=args.prefix)
    try:
        await transport.check()
        channel: str = args.channel
        if args.dlq_action == "list":
            letters = await transport.dead_letters(
                channel, routing_key=args.routing_key, count=args.count
            )
            if not letters:
                print(f"no dead letters on {channel}")
                return 0
            print(f"{'ID':<17} {'ROUTING KEY':<24} {'MESSAGE ID':<34} {'GROUP':<18} TRIES  REASON")
            for d in letters:
                key = d.envelope.headers.routing_key if d.envelope else "(invalid)"
                mid = d.envelope.headers.message_id if d.envelope else "-"
                reason = d.reason.partition("\n")[0]
                if len(reason) > 80:
                    reason = reason[:77] + "..."
                tries = d.details.get("attempts", "")
                print(
                    f"{d.dead_letter_id:<17} {key:<24} {mid:<34} {d.group:<18} {tries:>5}  {reason}"
                )
            print(f"{len(letters)} dead letter(s)")
            return 0
        if args.dlq_action == "show":
            letter = await transport.dead_letter(channel, args.id)
            if letter is None:
                return fail(f"no dead letter {args.id} on {channel}")
            at = letter.details.get("at", "")
            when = (
                datetime.datetime.fromtimestamp(int(at) / 1000, datetime.UTC).isoformat()
                if at.isdigit()
                else "?"
            )
            print(
                f"dead letter {letter.dead_letter_id} on {channel}, by group {letter.group} at {when}"
            )
            print(f"reason: {letter.reason.partition(chr(10))[0]}")
            for key in ("attempts", "error_type", "error_message", "entry_id", "consumer"):
                if key in letter.details:
                    print(f"{key}: {letter.details[key]}")
            print("fields:")
            for name, value in letter.fields.items():
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                print(f"  {name}: {text}")
            trace = letter.details.get("traceback")
            if trace:
                print("traceback:")
                print(trace.rstrip())
            return 0
        ids: list[str] = list(args.ids)
        if not ids:
            letters = await transport.dead_letters(
                channel, routing_key=args.routing_key, count=args.count
            )
            ids = [d.dead_letter_id for d in letters]
        if args.dlq_action == "replay":
            done = await transport.replay(channel, ids)
            print(f"replayed {done} dead letter(s) to {channel}")
            if done < len(ids):
                print(f"{len(ids) - done} not replayed (unknown id, or not a valid envelope)")
            return 0
        if args.all and not args.ids and not args.routing_key and args.count is None:
            done = await transport.purge(channel)
        else:
            done = await transport.purge(channel, ids)
        print(f"purged {done} dead letter(s) from {channel}")
        return 0
    finally:
        await transport.close()
