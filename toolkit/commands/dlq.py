"""``toolkit dlq list|show|replay|purge CHANNEL``: a Redis channel's dead letters."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import re
import sys
from typing import TYPE_CHECKING, Any, Final

from toolkit.commands._common import fail
from toolkit.commands._redis import add_redis_flags, redis_url_from
from toolkit.commands._terminal import columns, shown

if TYPE_CHECKING:
    from toolkit.channels.base import DeadLetter


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "dlq",
        help="list, show, replay or purge a channel's dead letters (Redis)",
        description="Dead letters of a Redis channel: messages rejected as invalid or whose "
        "handler failed on every attempt. Wire text (ids, keys, reasons, fields) is printed "
        "with control characters escaped. Exit status: 0 done; 1 nothing to show or replay "
        "(unknown id, no dead letter selected, one not replayable); 2 bad input (a malformed "
        "id, no selection) or Redis unreachable.",
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
        "send dead letters back to their channel: the original entry, same message id, "
        "fresh attempt count; exit 1 when any selected could not be replayed",
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
    import redis

    from toolkit.channels.redis import RedisUnavailable

    if args.dlq_action in ("replay", "purge"):
        selected = bool(args.ids) or args.all or args.routing_key or args.count is not None
        if not selected:
            return fail(f"toolkit dlq {args.dlq_action}: give ids, --routing-key, --count or --all")
    ids = [args.id] if args.dlq_action == "show" else getattr(args, "ids", [])
    malformed = [i for i in ids if not _is_entry_id(i)]
    if malformed:
        return fail(
            f"toolkit dlq {args.dlq_action}: not a dead-letter id: "
            + ", ".join(repr(shown(i)) for i in malformed)
            + " (ids look like 1795817879034-0: the first column of `toolkit dlq list`)"
        )
    try:
        return asyncio.run(_run(args))
    except RedisUnavailable as exc:
        return fail(f"toolkit dlq: {exc}")
    except redis.ResponseError as exc:
        return fail(f"toolkit dlq {args.dlq_action}: Redis refused: {shown(str(exc))}")


_ENTRY_ID: Final = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def _is_entry_id(text: str) -> bool:
    """A stream entry id (``<ms>-<seq>`` or ``<ms>``) Redis accepts: each part below 2**64."""
    match = _ENTRY_ID.fullmatch(text)
    return match is not None and all(int(p or 0) < 2**64 for p in match.groups())


def _header(letter: DeadLetter, name: str) -> str | bytes:
    """A header of a dead letter's original entry: as parsed, else raw, else ``-``."""
    if letter.envelope is not None:
        return str(getattr(letter.envelope.headers, name))
    return letter.fields.get(name) or "-"


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
                print(f"no dead letters on {shown(channel)}")
                return 0
            rows: list[list[str | bytes]] = [
                ["ID", "ROUTING KEY", "MESSAGE ID", "GROUP", "TRIES", "REASON"]
            ]
            for d in letters:
                reason = d.reason.partition("\n")[0]
                if len(reason) > 80:
                    reason = reason[:77] + "..."
                rows.append(
                    [
                        d.dead_letter_id,
                        _header(d, "routing_key"),
                        _header(d, "message_id"),
                        d.group,
                        d.details.get("attempts", ""),
                        reason,
                    ]
                )
            for line in columns(rows, right=[4]):
                print(line)
            print(f"{len(letters)} dead letter(s)")
            return 0
        if args.dlq_action == "show":
            letter = await transport.dead_letter(channel, args.id)
            if letter is None:
                print(f"no dead letter {args.id} on {shown(channel)}", file=sys.stderr)
                return 1
            _show(letter, channel)
            return 0
        ids: list[str] = list(args.ids)
        if not ids:
            letters = await transport.dead_letters(
                channel, routing_key=args.routing_key, count=args.count
            )
            ids = [d.dead_letter_id for d in letters]
        if args.dlq_action == "replay":
            if not ids:
                print(
                    f"nothing replayed: no dead letters on {shown(channel)} match", file=sys.stderr
                )
                return 1
            done = await transport.replay(channel, ids)
            print(f"replayed {done} dead letter(s) to {shown(channel)}")
            if done < len(ids):
                print(
                    f"{len(ids) - done} of {len(ids)} not replayed "
                    "(unknown id, or not a valid envelope: see `toolkit dlq show`)",
                    file=sys.stderr,
                )
                return 1
            return 0
        if args.all and not args.ids and not args.routing_key and args.count is None:
            done = await transport.purge(channel)
        else:
            done = await transport.purge(channel, ids)
        print(f"purged {done} dead letter(s) from {shown(channel)}")
        return 0
    finally:
        await transport.close()


def _show(letter: DeadLetter, channel: str) -> None:
    at = letter.details.get("at", "")
    when = (
        datetime.datetime.fromtimestamp(int(at) / 1000, datetime.UTC).isoformat()
        if at.isdigit() and len(at) < 16
        else "?"
    )
    print(
        f"dead letter {letter.dead_letter_id} on {shown(channel)}, "
        f"by group {shown(letter.group)} at {when}"
    )
    print(f"reason: {shown(letter.reason.partition(chr(10))[0])}")
    for key in ("attempts", "error_type", "error_message", "entry_id", "consumer"):
        if key in letter.details:
            print(f"{key}: {shown(letter.details[key])}")
    print("fields:")
    for name, value in letter.fields.items():
        print(f"  {shown(name)}: {shown(value)}")
    trace = letter.details.get("traceback")
    if trace:
        print("traceback:")
        for line in trace.rstrip().split("\n"):
            print(shown(line))
