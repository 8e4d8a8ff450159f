"""``toolkit scheduled list|cancel CHANNEL``: the scheduled messages waiting on a channel."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import time
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args, refusal
from toolkit.commands._terminal import columns, shown

if TYPE_CHECKING:
    from toolkit.channels.base import ScheduledMessage, Schedules
    from toolkit.pipe_settings import Bindings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "scheduled",
        help="list or cancel a channel's scheduled messages",
        description="Scheduled messages (sent with delay= or deliver_at=) still waiting on a "
        "channel, on the pipe that carries it; see docs/delivery.md#scheduled-messages. Wire "
        "text is printed with control characters escaped. Exit status: 0 done; 1 cancel found "
        "none of the ids waiting; 2 bad input, a pipe unreachable or one that cannot schedule "
        "or cannot list what waits (RabbitMQ: docs/rabbitmq.md#scheduled-messages).",
    )
    actions = parser.add_subparsers(dest="scheduled_action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help, description=help)
        p.add_argument("channel", help="channel name, e.g. ticket_commands")
        add_pipe_flags(p)
        return p

    listing = action("list", "list the messages waiting, soonest due first")
    listing.add_argument("--count", type=int, help="at most this many (soonest first)")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    cancel = action(
        "cancel",
        "drop waiting messages by message id before they are due; exit 1 when none was "
        "waiting (already delivered, cancelled or unknown)",
    )
    cancel.add_argument("message_ids", nargs="+", metavar="MESSAGE_ID", help="message ids")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.base import TransportError
    from toolkit.pipe_settings import BindingError

    if getattr(args, "count", None) is not None and args.count < 1:
        return fail(f"toolkit scheduled list: --count must be at least 1, not {args.count}")
    try:
        bindings = bindings_from_args(args)
        return asyncio.run(_run(args, bindings))
    except (TransportError, BindingError) as exc:
        return fail(f"toolkit scheduled: {exc}")


async def _run(args: argparse.Namespace, bindings: Bindings) -> int:
    from toolkit.pipe_settings import PipeSettings, redact
    from toolkit.pipes import Pipes
    from toolkit.scheduling import ScheduledUnlistedError

    channel: str = args.channel
    pipes = Pipes(bindings, PipeSettings(prefix=args.prefix))
    try:
        scheduler = pipes.scheduler(channel)
        # A pipe that holds scheduled messages where they cannot be read (RabbitMQ)
        # refuses at once: no point in connecting first.
        if getattr(scheduler, "lists_scheduled", True):
            await pipes.check([channel])
        if args.scheduled_action == "list":
            return _list(channel, await scheduler.scheduled(channel, count=args.count), args.json)
        return await _cancel(channel, scheduler, args.message_ids)
    except ScheduledUnlistedError as exc:
        pipe = bindings.pipe_of(channel)
        return fail(
            f"toolkit scheduled {args.scheduled_action}: channel {shown(channel)} is on pipe "
            f"{shown(pipe)} ({redact(bindings.pipes[pipe])}): {exc}"
        )
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return fail(
            f"toolkit scheduled {args.scheduled_action}: the pipe refused: {shown(refused)}"
        )
    finally:
        await pipes.close()


def _iso(ms: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(
            timespec="milliseconds"
        )
    except (OverflowError, OSError, ValueError):
        return "?"


def _list(channel: str, waiting: list[ScheduledMessage], as_json: bool) -> int:
    if as_json:
        import msgspec

        document = [
            {
                "message_id": s.message_id,
                "deliver_at_ms": s.deliver_at_ms,
                "deliver_at": _iso(s.deliver_at_ms),
                "routing_key": s.envelope.headers.routing_key if s.envelope else None,
                "kind": s.envelope.headers.kind if s.envelope else None,
                "valid": s.envelope is not None,
            }
            for s in waiting
        ]
        sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
        return 0
    if not waiting:
        print(f"no scheduled messages on {shown(channel)}")
        return 0
    now = time.time() * 1000
    rows: list[list[str | bytes]] = [["MESSAGE ID", "DUE (UTC)", "IN", "ROUTING KEY"]]
    for s in waiting:
        key = s.envelope.headers.routing_key if s.envelope else "(not an envelope)"
        rows.append([s.message_id, _iso(s.deliver_at_ms), _until(s.deliver_at_ms - now), key])
    for line in columns(rows, right=[2]):
        print(line)
    print(f"{len(waiting)} scheduled message(s)")
    return 0


def _until(ms: float) -> str:
    seconds = max(ms / 1000, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


async def _cancel(channel: str, scheduler: Schedules, message_ids: list[str]) -> int:
    ids = list(dict.fromkeys(message_ids))
    done = await scheduler.cancel_scheduled(channel, ids)
    print(f"cancelled {done} scheduled message(s) on {shown(channel)}")
    if done < len(ids):
        print(
            f"{len(ids) - done} of {len(ids)} not waiting "
            "(already delivered, cancelled, or unknown: see `toolkit scheduled list`)",
            file=sys.stderr,
        )
        return 1 if done == 0 else 0
    return 0
