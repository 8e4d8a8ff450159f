"""Keeping the lease on a batch in hand while its handlers run.

A transport with leases (:class:`~toolkit.channels.base.RenewsLeases`) hands
a received message to another consumer of the group once it has been held
for ``visibility_timeout`` seconds without being settled. The consumer wraps
each batch in a :class:`LeaseKeeper`, which renews the batch every third of
that time until the batch is done, and is stopped before the batch is
settled, so nothing settled is renewed. A batch done within the first third
costs one timer, not a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from toolkit.channels.base import Delivery, RenewsLeases

__all__ = ["LeaseKeeper"]

log = logging.getLogger("toolkit.consumer")


class LeaseKeeper:
    """Renews ``sub``'s lease on ``deliveries`` every ``visibility_timeout / 3`` seconds
    from now until :meth:`stop`. ``channel`` and ``group`` name them in log lines."""

    __slots__ = ("_deliveries", "_done", "_every", "_sub", "_task", "_timer", "_where")

    def __init__(
        self, sub: RenewsLeases, deliveries: Sequence[Delivery], channel: str, group: str
    ) -> None:
        self._sub = sub
        self._where = (channel, group)
        self._deliveries = deliveries
        self._every = sub.visibility_timeout / 3
        self._task: asyncio.Task[None] | None = None
        self._done: asyncio.Event | None = None
        self._timer = asyncio.get_running_loop().call_later(self._every, self._start)

    def _start(self) -> None:
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._keep(self._done))

    async def _keep(self, done: asyncio.Event) -> None:
        sub = self._sub
        channel, group = self._where
        held = list(self._deliveries)
        while held and not done.is_set():
            try:
                lost = await sub.renew(held)
            except Exception as exc:
                # The batch goes on: a renewal that fails now may succeed at the next
                # interval, and the settlement that follows reports a lasting outage.
                log.warning(
                    "could not renew the lease on %d message(s) on %s: %s", len(held), channel, exc
                )
                lost = ()
            if lost:
                log.warning(
                    "%d message(s) in hand on %s were taken by another consumer of group %s "
                    "before their handlers finished (not renewed for the visibility timeout "
                    "of %gs: was the process paused, or its event loop blocked by a "
                    "synchronous handler?); they may be handled twice",
                    len(lost),
                    channel,
                    group,
                    sub.visibility_timeout,
                )
                gone = {id(d) for d in lost}
                held = [d for d in held if id(d) not in gone]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._every)
                return

    async def stop(self) -> None:
        """Stop renewing; returns once no renewal is under way."""
        self._timer.cancel()
        if self._task is not None and self._done is not None:
            self._done.set()
            await self._task
