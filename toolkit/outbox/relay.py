"""The relay: moves committed outbox rows to their channels, in order, at least once.

Each round is one batch (:mod:`toolkit.outbox.store`): claim up to
``batch_size`` rows in ``id`` order, decode them, send each channel's rows
in one ``send`` (in order), delete the rows of the channels that stored them,
commit. A channel whose send fails (``TransportError``: the broker is down)
keeps its rows, which are sent again once the relay has backed off; the other
channels of the batch go on. Nothing is ever dropped: a row that cannot be
decoded stays (logged each round) and holds back its channel in that batch.

Run it as a process (``toolkit relay --outbox URL``) or inside a service::

    relay = Relay("postgresql://app@db/app", ctx.transport)
    async with relay.running():      # in the App's startup: a task until shutdown
        yield bind(Orders(ctx.publisher))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from toolkit.channels.base import Transport, TransportError
from toolkit.envelope import Envelope
from toolkit.outbox.store import Store, open_store
from toolkit.outbox.table import decode
from toolkit.pipe_settings import DEFAULT_PREFIX

__all__ = ["Relay", "RelayStats"]

log = logging.getLogger("toolkit.outbox")

#: first pause after a failure, seconds (doubled up to ``max_backoff``)
_FIRST_BACKOFF: Final = 0.05


@dataclass
class RelayStats:
    #: rows sent to their channel and deleted
    relayed: int = 0
    #: batches that moved at least one row
    batches: int = 0
    #: rounds that failed (broker or database unavailable, a row that does not decode)
    failures: int = 0


class Relay:
    """Moves the rows of the outbox at ``outbox`` (``postgresql://…``, ``sqlite:///path``)
    to their channels through ``transport`` (usually :class:`~toolkit.Pipes`).

    ``run()`` until ``stop()``; ``running()`` runs it as a task for the length
    of an ``async with``. Several relays (processes or tasks) may serve one
    PostgreSQL outbox at once: each (channel, key) partition is relayed by one
    of them at a time, in order.
    """

    def __init__(
        self,
        outbox: str,
        transport: Transport,
        *,
        prefix: str = DEFAULT_PREFIX,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if poll_interval <= 0 or max_backoff <= 0:
            raise ValueError("poll_interval and max_backoff must be positive")
        self.store: Store = open_store(outbox, prefix=prefix)
        self.transport = transport
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.stats = RelayStats()
        self._stopping = False
        self._wake: asyncio.Event | None = None

    @property
    def where(self) -> str:
        """The outbox's URL, password hidden."""
        return self.store.where

    async def check(self) -> None:
        """Raise :class:`~toolkit.TransportError` unless the outbox's database answers."""
        await self.store.check()

    async def relay_once(self) -> int:
        """One batch: the rows sent and deleted. Raises the first channel's error after
        committing what the other channels stored."""
        error: Exception | None = None
        async with self.store.batch(self.batch_size) as batch:
            by_channel: dict[str, tuple[list[int], list[Envelope]]] = {}
            broken: set[str] = set()
            for row_id, channel, fields in batch.rows:
                if channel in broken:
                    continue  # a later row must not overtake one that cannot go
                try:
                    envelope = decode(fields)
                except Exception as exc:
                    log.error(
                        "outbox row %s for %s cannot be read; it stays: %s", row_id, channel, exc
                    )
                    broken.add(channel)
                    error = error or exc
                    continue
                ids, envelopes = by_channel.setdefault(channel, ([], []))
                ids.append(row_id)
                envelopes.append(envelope)
            for channel, (ids, envelopes) in by_channel.items():
                try:
                    await self.transport.send(channel, envelopes)
                except Exception as exc:
                    error = error or exc
                    continue
                batch.sent.extend(ids)
        if batch.sent:
            self.stats.relayed += len(batch.sent)
            self.stats.batches += 1
        if error is not None:
            raise error
        return len(batch.sent)

    async def run(self, *, until_empty: bool = False) -> RelayStats:
        """Relay until :meth:`stop` (or, with ``until_empty``, until the outbox is empty).

        The batch in hand is always finished. Failures (``TransportError`` from
        the broker or the database, anything else logged with its traceback)
        pause the relay, doubling up to ``max_backoff``; it then goes on.
        """
        self._wake = asyncio.Event()
        if self._stopping:
            self._wake.set()
        backoff = _FIRST_BACKOFF
        try:
            while not self._stopping:
                try:
                    moved = await self.relay_once()
                except TransportError as exc:
                    self.stats.failures += 1
                    log.warning("outbox relay: %s; retrying in %.2f s", exc, backoff)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                except Exception:
                    self.stats.failures += 1
                    log.exception("outbox relay failed; retrying in %.2f s", backoff)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = _FIRST_BACKOFF
                if moved < self.batch_size:
                    if until_empty and moved == 0 and await self.store.pending() == 0:
                        break
                    await self._pause(self.poll_interval)
        finally:
            self._stopping = False  # the stop is spent: run() may be called again
            await self.store.close()
        return self.stats

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        """Run the relay as a task for the length of the block; stop it gracefully after."""
        task = asyncio.ensure_future(self.run())
        try:
            yield self
        finally:
            self.stop()
            await task
