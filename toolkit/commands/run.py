"""``toolkit run SERVICE --app module:object``: run a service's channels on their pipes.

The older ``toolkit run CHANNEL --service NAME`` is the same as
``toolkit run NAME --channel CHANNEL``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

from toolkit.commands._common import add_location_flags, config_from, fail
from toolkit.commands._pipes import add_pipe_flags, bindings_from_args
from toolkit.commands._telemetry import (
    TelemetryError,
    add_telemetry_flags,
    start_telemetry,
    use_log_format,
)

if TYPE_CHECKING:
    from toolkit.channels.base import Transport
    from toolkit.service_map import ServiceMap
    from toolkit.workers import SyncHandlers

#: --threads, --no-threads, neither
_SYNC_HANDLERS: dict[bool | None, SyncHandlers] = {True: "thread", False: "inline", None: "auto"}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a service: every channel it consumes, on its pipe, with its application",
        description="Run SERVICE in this process: start the application of --app, consume every "
        "channel the service map gives SERVICE (or those of --channel) as its consumer group, and "
        "dispatch each message to its handlers. Processes of one service share the work. "
        "`toolkit run CHANNEL --service SERVICE` (the older form) is `toolkit run SERVICE "
        "--channel CHANNEL`. SIGTERM or SIGINT: stop reading, finish and acknowledge the batches "
        "in hand, shut the application down, exit 0. Exit 1 when --stop-on-failure stopped it, "
        "2 on bad options or when a pipe cannot be reached. Each channel is consumed on the pipe "
        "bound to it (Redis, RabbitMQ, PostgreSQL: docs/pipes.md).",
    )
    parser.add_argument(
        "target",
        metavar="SERVICE",
        help="service to run, e.g. ticket_service (with --service: a CHANNEL of that service)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        help="consume only this channel of SERVICE (repeatable; default: all it consumes)",
    )
    parser.add_argument(
        "--service",
        help="the older form: `toolkit run CHANNEL --service SERVICE` consumes one channel",
    )
    parser.add_argument(
        "--app",
        required=True,
        help="module:object: a toolkit.App, or (older forms) the handler implementation, a class "
        "or function taking no arguments that makes it, or a Dispatcher",
    )
    add_location_flags(parser)
    add_pipe_flags(parser)
    parser.add_argument("--consumer-name", help="name in the group (default: host-pid)")
    health = parser.add_argument_group("health (liveness and readiness, Kubernetes style)")
    health.add_argument(
        "--health-port",
        type=int,
        help="serve GET /livez and /readyz on this port (0: any free one, shown at startup)",
    )
    health.add_argument(
        "--health-host", default="0.0.0.0", help="address for --health-port (all interfaces)"
    )
    health.add_argument(
        "--health-file",
        help="rewrite this file every --health-interval seconds with `ready` or `not ready: why`; "
        "removed on exit",
    )
    health.add_argument(
        "--health-interval", type=float, default=5.0, help="seconds between writes (5)"
    )
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
        "--threads",
        action=argparse.BooleanOptionalAction,
        help="run synchronous handlers in worker threads (as many as --concurrency), so one "
        "that blocks does not stall the consumer; default: on when --concurrency > 1",
    )
    tuning.add_argument(
        "--visibility-timeout",
        type=float,
        default=30.0,
        help="seconds an unacknowledged message may go without its lease being renewed "
        "before another consumer reclaims it (30); renewed every third of it while handled",
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
    dedup = parser.add_argument_group("deduplication (docs/delivery.md#deduplication)")
    dedup.add_argument(
        "--deduplicate",
        metavar="WINDOW",
        help="acknowledge without calling the handler a message whose id the service handled "
        "within WINDOW (90s, 30m, 24h, 7d or seconds); the pipe must support it",
    )
    dedup.add_argument(
        "--exactly-once",
        action="store_true",
        help="with --deduplicate, on PostgreSQL: the handlers' writes through "
        "toolkit.context.current_transaction() commit in one transaction with the "
        "messages' records and acknowledgements (--concurrency 1)",
    )
    add_telemetry_flags(parser)
    parser.set_defaults(func=run)


def parse_window(text: str) -> float:
    """The seconds of ``--deduplicate``'s window (:func:`toolkit.durations.parse_window`)."""
    from toolkit.durations import parse_window as window

    try:
        return window(text)
    except ValueError as exc:
        raise ValueError(f"--deduplicate {exc}") from None


def run(args: argparse.Namespace) -> int:
    from toolkit.channels.base import TransportError
    from toolkit.commands._app import AppError, app_for, load_app, service_map_of
    from toolkit.commands.groups import consumers_of
    from toolkit.consumer import DeduplicationUnsupported, ExactlyOnceUnsupported
    from toolkit.health import HealthOptions
    from toolkit.host import HostError, ServiceHost, select_channels
    from toolkit.pipe_settings import BindingError, PipeSettings
    from toolkit.pipes import Pipes
    from toolkit.retry import RetryPolicy
    from toolkit.runner import RunOptions

    use_log_format(args.log_format)
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
            sync_handlers=_SYNC_HANDLERS[args.threads],
            retry=retry,
            deduplicate=None if args.deduplicate is None else parse_window(args.deduplicate),
            exactly_once=args.exactly_once,
        )
        if args.exactly_once and (args.deduplicate is None or args.concurrency != 1):
            raise ValueError(
                "--exactly-once needs --deduplicate WINDOW (how long handled ids are kept) "
                "and --concurrency 1 (a step's handlers share one transaction)"
            )
        idle = PipeSettings().idle_consumer_timeout
        if args.idle_consumer_timeout is not None:
            if args.idle_consumer_timeout < 0:
                raise ValueError("--idle-consumer-timeout must not be negative (0: never)")
            idle = args.idle_consumer_timeout or None
        if args.trim_interval < 0:
            raise ValueError("--trim-interval must not be negative")
        if args.visibility_timeout <= 0:
            raise ValueError("--visibility-timeout must be positive")
        settings = PipeSettings(
            prefix=args.prefix,
            visibility_timeout=args.visibility_timeout,
            idle_consumer_timeout=idle,
            trim_acknowledged=args.trim,
            trim_interval=args.trim_interval,
        )
        if args.batch_size < 1 or args.concurrency < 1:
            raise ValueError("--batch-size and --concurrency must be at least 1")
        health = HealthOptions(
            port=args.health_port,
            host=args.health_host,
            file=args.health_file,
            interval=args.health_interval,
        )
        bindings = bindings_from_args(args, config)
    except ValueError as exc:
        return fail(f"toolkit run: {exc}")
    try:
        service_map = service_map_of(config.package, config.output)
        bindings.check_channels(service_map.channels)
        service, wanted = which_service(service_map, args.target, args.service, args.channel)
        channels = select_channels(service_map, service, wanted)
        app = app_for(load_app(args.app), service, config.package, config.output)
    except (AppError, HostError, BindingError) as exc:
        return fail(f"toolkit run: {exc}")

    async def main() -> int:
        pipes = Pipes(bindings, settings)
        try:
            await pipes.check(channels)
            if args.trim:
                for channel in channels:
                    await _warn_retired(
                        pipes.transport(channel), channel, consumers_of(service_map, channel)
                    )
            host = ServiceHost(
                pipes,
                app,
                service_map,
                options,
                channels=channels,
                consumer_name=args.consumer_name,
                health=health,
            )
            await host.run(handle_signals=True, announce=_announce)
            return 1 if host.reason == "failure" else 0
        finally:
            await pipes.close()

    try:
        # After the app's module is imported: an SDK it configures is found.
        stop_telemetry = start_telemetry(args.metrics_port, args.metrics_host)
    except TelemetryError as exc:
        return fail(f"toolkit run: {exc}")
    try:
        return asyncio.run(main())
    except (
        TransportError,
        HostError,
        AppError,
        BindingError,
        DeduplicationUnsupported,
        ExactlyOnceUnsupported,
    ) as exc:
        return fail(f"toolkit run: {exc}")
    finally:
        stop_telemetry()


def which_service(
    service_map: ServiceMap, target: str, service: str | None, channels: list[str]
) -> tuple[str, list[str]]:
    """(service, channels asked for) from ``toolkit run``'s two forms.

    ``toolkit run SERVICE [--channel C ...]``, or the older ``toolkit run
    CHANNEL --service SERVICE``: ``--service`` says the older form; otherwise
    the name must be a service of the map (a channel gets a hint, a name that
    is both a service and a channel must be told apart with ``--channel``).
    """
    from toolkit.host import HostError

    services = service_map.services
    if service is not None:
        if channels:
            raise HostError(
                "--channel and --service do not go together: `toolkit run SERVICE --channel "
                "CHANNEL` (or the older `toolkit run CHANNEL --service SERVICE`)"
            )
        if target not in service_map.channels and target in services:
            raise HostError(
                f"{target!r} is a service, and --service wants a channel before it: "
                f"`toolkit run {target}` runs every channel of {target}"
            )
        return service, [target]
    if target in services and target in service_map.channels and not channels:
        readers = ", ".join(service_map.channels[target].consumers) or "nobody"
        raise HostError(
            f"{target!r} names both a service and a channel; say which: `toolkit run {target} "
            f"--channel CHANNEL` for the service, `toolkit run {target} --service SERVICE` for "
            f"the channel (consumed by {readers})"
        )
    if target in services:
        return target, channels
    if target in service_map.channels:
        consumers = service_map.channels[target].consumers
        example = consumers[0] if consumers else "SERVICE"
        raise HostError(
            f"{target!r} is a channel; name the service that consumes it: `toolkit run {example} "
            f"--channel {target}` (consumed by {', '.join(consumers) or 'nobody'})"
        )
    raise HostError(
        f"the service map has no service or channel {target!r} "
        f"(services: {', '.join(services) or 'none'})"
    )


def _announce(summary: str) -> None:
    # stderr, where the logs go: one line a supervisor's log shows at startup.
    print(summary, file=sys.stderr, flush=True)


async def _warn_retired(transport: Transport, channel: str, used: frozenset[str]) -> None:
    groups = getattr(transport, "groups", None)
    if groups is None:
        return  # a pipe without Redis's trimming has no groups holding it back
    for group in await groups(channel):
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
