"""``toolkit run CHANNEL --service NAME --app module:object``: consume a Redis channel."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import add_location_flags, config_from, fail
from toolkit.commands._redis import add_redis_flags, redis_url_from

if TYPE_CHECKING:
    from toolkit.channels.redis import RedisTransport


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="consume a channel on Redis with a service's handlers",
        description="Consume CHANNEL as SERVICE (its consumer group) and dispatch each message to the "
        "handlers of --app, bound with the generated <package>.<service>.bind(). SIGTERM or SIGINT: "
        "stop reading, finish and acknowledge the batch in hand, exit 0. Exit 1 when "
        "--stop-on-failure stopped it, 2 on bad options or when Redis cannot be reached.",
    )
    parser.add_argument("channel", help="channel to consume, e.g. ticket_commands")
    parser.add_argument("--service", required=True, help="consuming service (the consumer group)")
    parser.add_argument(
        "--app",
        required=True,
        help="module:object: the handler implementation, a class or function making it, or a Dispatcher",
    )
    add_location_flags(parser)
    add_redis_flags(parser)
    parser.add_argument("--consumer-name", help="name in the group (default: host-pid)")
    limits = parser.add_argument_group("limits (the runner stops gracefully at the first reached)")
    limits.add_argument("--limit", type=int, help="messages to process")
    limits.add_argument("--time-limit", type=float, help="seconds to run")
    limits.add_argument("--memory-limit", type=float, help="resident memory in MiB")
    limits.add_argument(
        "--stop-on-failure",
        action="store_true",
        help="stop after a batch in which a handler raised or a message was dead-lettered "
        "(entries that are no envelope included)",
    )
    limits.add_argument(
        "--until-empty", action="store_true", help="stop when there is nothing left to receive"
    )
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument("--batch-size", type=int, default=100, help="messages per read (100)")
    tuning.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="handlers of a batch running at once (1 keeps stream order)",
    )
    tuning.add_argument(
        "--visibility-timeout",
        type=float,
        default=30.0,
        help="seconds before another consumer reclaims an unacknowledged message (30); "
        "must exceed the longest batch handling time",
    )
    tuning.add_argument(
        "--idle-consumer-timeout",
        type=float,
        help="remove consumers of the group that own no pending message and have been idle "
        "this many seconds: those left behind by kill -9 (3600; 0 = never)",
    )
    trim = parser.add_argument_group("trimming (by default the stream keeps every entry)")
    trim.add_argument(
        "--trim",
        action="store_true",
        help="after acknowledging, trim the entries every group of the channel has read and "
        "acknowledged; never removes one a group has not read yet or still has pending "
        "(retries included). A retired group holds trimming back: see `toolkit groups`",
    )
    trim.add_argument(
        "--trim-interval",
        type=float,
        default=10.0,
        help="seconds between two trims with --trim (10)",
    )
    retry = parser.add_argument_group("retries of failing handlers")
    retry.add_argument("--max-attempts", type=int, default=5, help="deliveries in total (5)")
    retry.add_argument("--retry-base", type=float, default=0.5, help="first delay, seconds (0.5)")
    retry.add_argument("--retry-cap", type=float, default=60.0, help="longest delay, seconds (60)")
    retry.add_argument(
        "--max-deliveries",
        type=int,
        help="dead-letter, without calling the handler, a message delivered more times than "
        "this without being settled (one that kills its consumer: segfault, OOM kill); "
        "default: --max-attempts + 10, so retries are never cut short and a few restarts "
        "for other reasons (deploys, slow batches reclaimed) are tolerated",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.redis import ChannelOptions, RedisTransport, RedisUnavailable
    from toolkit.commands._app import AppError, bind_app, load_app, service_map_of
    from toolkit.commands.groups import consumers_of
    from toolkit.retry import RetryPolicy
    from toolkit.runner import Runner, RunOptions

    config = config_from(args)
    try:
        retry = RetryPolicy(
            attempts=args.max_attempts,
            base=args.retry_base,
            cap=args.retry_cap,
            max_deliveries=args.max_deliveries,
        )
        options = RunOptions(
            limit=args.limit,
            time_limit=args.time_limit,
            memory_limit=None
            if args.memory_limit is None
            else int(args.memory_limit * 1024 * 1024),
            stop_on_failure=args.stop_on_failure,
            until_empty=args.until_empty,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            retry=retry,
        )
        idle = ChannelOptions().idle_consumer_timeout
        if args.idle_consumer_timeout is not None:
            if args.idle_consumer_timeout < 0:
                raise ValueError("--idle-consumer-timeout must not be negative (0: never)")
            idle = args.idle_consumer_timeout or None
        if args.trim_interval < 0:
            raise ValueError("--trim-interval must not be negative")
        channel_options = ChannelOptions(
            visibility_timeout=args.visibility_timeout,
            idle_consumer_timeout=idle,
            trim_acknowledged=args.trim,
            trim_interval=args.trim_interval,
        )
        if args.batch_size < 1 or args.concurrency < 1:
            raise ValueError("--batch-size and --concurrency must be at least 1")
    except ValueError as exc:
        return fail(f"toolkit run: {exc}")
    try:
        service_map = service_map_of(config.package, config.output)
        consumed = [c.name for c in service_map.channels_consumed_by(args.service)]
        if args.channel not in consumed:
            return fail(
                f"toolkit run: the service map says {args.service!r} does not consume "
                f"{args.channel!r} (it consumes: {', '.join(consumed) or 'nothing'})"
            )
        dispatcher = bind_app(load_app(args.app), args.service, config.package, config.output)
    except AppError as exc:
        return fail(f"toolkit run: {exc}")

    async def main() -> int:
        transport = RedisTransport(
            redis_url_from(args), prefix=args.prefix, options=channel_options
        )
        try:
            await transport.check()
            if args.trim:
                await _warn_retired(
                    transport, args.channel, consumers_of(service_map, args.channel)
                )
            runner = Runner(
                transport,
                args.channel,
                # The map decides what the channel delivers, also to a hand-made dispatcher.
                dispatcher.on_channel(args.channel, service_map),
                options,
                consumer_name=args.consumer_name,
            )
            logging.getLogger("toolkit.runner").info(
                "consuming %s as %s (%s) with batches of %d",
                args.channel,
                args.service,
                runner.consumer.consumer_name,
                options.batch_size,
            )
            await runner.run(handle_signals=True)
            return 1 if runner.reason == "failure" else 0
        finally:
            await transport.close()

    try:
        return asyncio.run(main())
    except RedisUnavailable as exc:
        return fail(f"toolkit run: {exc}")


async def _warn_retired(transport: RedisTransport, channel: str, used: frozenset[str]) -> None:
    for group in await transport.groups(channel):
        if group.name not in used:
            logging.getLogger("toolkit.runner").warning(
                "group %s on %s is retired (not a consumer of it in the service map) and holds "
                "back trimming (lag %s); remove it with `toolkit groups remove %s %s`",
                group.name,
                channel,
                "?" if group.lag is None else group.lag,
                channel,
                group.name,
            )
