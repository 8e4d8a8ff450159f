"""What a publish did: its result, and the error for an event that reached only some channels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn

import msgspec

from toolkit.channels.base import TransportError
from toolkit.envelope import Envelope

__all__ = ["PartialPublishError", "PublishResult", "raise_partial"]


class PublishResult(msgspec.Struct, frozen=True):
    """What ``publish_event`` did: the message id and the channels that stored it.

    ``channels`` is empty when no subscription matched; nothing was sent then.
    When only some channels stored it, :class:`PartialPublishError` is raised instead.
    """

    message_id: str
    channels: tuple[str, ...]

    @property
    def routed(self) -> bool:
        return bool(self.channels)


class PartialPublishError(TransportError):
    """An event reached some of its channels and not the others.

    ``stored`` names the channels that have it, ``failed`` maps each other
    channel to its error (the first is also ``__cause__``). Publish again
    with ``message_id=error.message_id`` so that the copies keep one id
    (consumers that key their effects on it see a redelivery, not a new
    event). From ``publish_events``, ``message_ids`` lists every event's id;
    on a failed channel the events before the failing one may be stored.
    """

    def __init__(
        self,
        routing_key: str,
        message_ids: Sequence[str],
        stored: Sequence[str],
        failed: Mapping[str, Exception],
    ) -> None:
        self.routing_key = routing_key
        self.message_ids = tuple(message_ids)
        self.stored = tuple(stored)
        self.failed = dict(failed)
        problems = "; ".join(f"{c}: {type(e).__name__}: {e}" for c, e in self.failed.items())
        super().__init__(
            f"event {routing_key!r} (message id {self.message_id}) was stored on "
            f"{', '.join(self.stored)} but not on {', '.join(self.failed)} ({problems}); "
            "publish it again with the same message_id"
        )
        self.__cause__ = next(iter(self.failed.values()))

    @property
    def message_id(self) -> str:
        """The (first) event's id: what ``message_id=`` of a retry should be."""
        return self.message_ids[0]


def raise_partial(
    routing_key: str,
    envelopes: Sequence[Envelope],
    channels: tuple[str, ...],
    failed: Mapping[str, Exception],
) -> NoReturn:
    """Raise for a multi-channel publish that some channels did not store."""
    if len(failed) == len(channels):
        raise next(iter(failed.values()))  # stored nowhere: as a single channel's failure
    stored = [c for c in channels if c not in failed]
    raise PartialPublishError(
        routing_key, [e.headers.message_id for e in envelopes], stored, failed
    )
