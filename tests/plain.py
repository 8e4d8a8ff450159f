"""A transport of a pipe with no optional capability (no scheduling, no priorities):
it records what is sent, for tests of what the bus refuses before sending."""

from __future__ import annotations

from collections.abc import Sequence

from toolkit import Envelope, Subscription


class PlainTransport:
    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def send(self, channel: str, envelopes: Sequence[Envelope]) -> None:
        self.sent.extend(envelopes)

    async def subscribe(self, channel: str, group: str, consumer: str) -> Subscription:
        raise NotImplementedError("only sending is tested through it")

    async def close(self) -> None:
        return None
