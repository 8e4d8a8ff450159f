"""``toolkit dlq list|show|replay|purge CHANNEL``: a channel's dead letters, on its pipe."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args
from toolkit.commands._terminal import columns, shown

if TYPE_CHECKING:
    from toolkit.channels.base import DeadLetter, DeadLetterStore
    from toolkit.pipe_settings import Bindings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "dlq",
        help="list, show, replay or purge a channel's dead letters",
        description="Dead letters of a channel, on the pipe that carries it: messages rejected as invalid or whose "
        "handler failed on every attempt. Wire text (ids, keys, reasons, fields) is printed "
        "with control characters escaped. Exit status: 0 done; 1 nothing to show or replay "
        "(unknown id, no dead letter selected, one not replayable); 2 bad input (a malformed "
        "id, no selection), a pipe unreachable or one that keeps no dead letters.",
    )
    actions = parser.add_subparsers(dest="dlq_action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help, description=help)
        p.add_argument("channel", help="channel name, e.g. ticket_commands")
        add_pipe_flags(p)
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
    from toolkit.channels.base import TransportError
    from toolkit.pipe_settings import BindingError

    if args.dlq_action in ("replay", "purge"):
        selected = bool(args.ids) or args.all or args.routing_key or args.count is not None
        if not selected:
            return fail(f"toolkit dlq {args.dlq_action}: give ids, --routing-key, --count or --all")
    try:
        bindings = bindings_from_args(args)
        return asyncio.run(_run(args, bindings))
    except (TransportError, BindingError) as exc:
        return fail(f"toolkit dlq: {exc}")


def _malformed_ids(args: argparse.Namespace, store: DeadLetterStore) -> str | None:
    """The error for ids the store could never hold (a typo), before asking it."""
    ids = [args.id] if args.dlq_action == "show" else getattr(args, "ids", [])
    valid = getattr(store, "valid_dead_letter_id", None)
    malformed = [i for i in ids if callable(valid) and not valid(i)]
    if not malformed:
        return None
    example = getattr(store, "dead_letter_id_example", "?")
    return (
        f"toolkit dlq {args.dlq_action}: not a dead-letter id: "
        + ", ".join(repr(shown(i)) for i in malformed)
        + f" (ids look like {example}: the first column of `toolkit dlq list`)"
    )


def _header(letter: DeadLetter, name: str) -> str | bytes:
    """A header of a dead letter's original entry: as parsed, else raw, else ``-``."""
    if letter.envelope is not None:
        return str(getattr(letter.envelope.headers, name))
    return letter.fields.get(name) or "-"


async def _run(args: argparse.Namespace, bindings: Bindings) -> int:
    from toolkit.pipe_settings import PipeSettings
    from toolkit.pipes import Pipes

    channel: str = args.channel
    pipes = Pipes(bindings, PipeSettings(prefix=args.prefix))
    try:
        transport = pipes.dead_letter_store(channel)
        malformed = _malformed_ids(args, transport)
        if malformed is not None:
            return fail(malformed)
        await pipes.check([channel])
        return await _act(args, channel, transport)
    except Exception as exc:
        refused = _refusal(exc)
        if refused is None:
            raise
        return fail(f"toolkit dlq {args.dlq_action}: the pipe refused: {shown(refused)}")
    finally:
        await pipes.close()


def _refusal(exc: Exception) -> str | None:
    """The server's words when ``exc`` is a refusal of a command (not an outage, not a bug)."""
    redis = sys.modules.get("redis")  # not loaded: the error cannot be one of its
    if redis is not None and isinstance(exc, redis.ResponseError):
        return str(exc)
    return None


async def _act(args: argparse.Namespace, channel: str, transport: DeadLetterStore) -> int:
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
            print(f"nothing replayed: no dead letters on {shown(channel)} match", file=sys.stderr)
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
