"""Deduplication of some routing keys only: each key's window from the schema.

``deduplicate = "24h"`` in a schema's ``[commands."key"]`` or
``[subscribes."key"]`` gives that key's route a window
(:attr:`toolkit.dispatcher.Route.deduplicate`). The consumer then looks up
and records only those keys' message ids, each for its own window, through
:class:`KeyedDeduplication` over the subscription's own store; a consumer
window (``toolkit run --deduplicate``) covers the other keys. See
``docs/delivery.md#deduplication``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from toolkit.channels.base import Deduplicates, Delivery

__all__ = ["KeyedDeduplication"]


class KeyedDeduplication:
    """:class:`Deduplicates` over ``store`` for the keys of ``windows`` (each its own
    window) and, when ``default`` is set, every other key for that window."""

    def __init__(
        self, store: Deduplicates, windows: Mapping[str, float], default: float | None
    ) -> None:
        self.store = store
        self.windows = dict(windows)
        self.default = default

    def _window(self, delivery: Delivery) -> float | None:
        return self.windows.get(delivery.envelope.headers.routing_key, self.default)

    def covers(self, delivery: Delivery) -> bool:
        """Whether ``delivery``'s key is deduplicated at all."""
        return self._window(delivery) is not None

    async def seen(self, deliveries: Sequence[Delivery]) -> set[str]:
        asked = [d for d in deliveries if self.covers(d)]
        return await self.store.seen(asked) if asked else set()

    async def remember(self, deliveries: Sequence[Delivery], window: float) -> None:
        """Record each delivery for its key's window (``window`` is the consumer's, unused:
        ``default`` is that)."""
        by_window: dict[float, list[Delivery]] = {}
        for delivery in deliveries:
            own = self._window(delivery)
            if own is not None:
                by_window.setdefault(own, []).append(delivery)
        for seconds, some in by_window.items():
            await self.store.remember(some, seconds)
