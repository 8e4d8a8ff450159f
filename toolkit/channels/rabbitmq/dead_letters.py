"""The dead-letter store of the RabbitMQ transport: list, look up, replay and purge.

Each channel's dead letters are a classic durable queue
(``<prefix>.<channel>.dead``): the original body, and headers ``dlq_reason``,
``dlq_group``, ``dlq_attempts``... plus ``dlq_original``, a table holding the
original headers exactly (layout: :func:`~toolkit.channels.rabbitmq.wire.dead_letter_headers`).
The AMQP ``message_id`` property is the dead letter's id (``<Unix ms>-<hex>``).

AMQP cannot read a queue without taking its messages, so reading gets them
all unacknowledged on a channel of its own and closes it: the broker puts
them back where they were (classic queues keep their place). A replay
publishes the original (confirmed) straight to the dead-lettering group's
queue of its priority, then acknowledges the dead letter; a purge acknowledges them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import aiormq
from pamqp import commands as spec

from toolkit.channels.base import DeadLetter
from toolkit.channels.rabbitmq.errors import is_transient, unavailable
from toolkit.channels.rabbitmq.link import Link, Outgoing
from toolkit.channels.rabbitmq.names import ChannelNames
from toolkit.channels.rabbitmq.wire import (
    fields_of,
    priority_of,
    split_dead_letter,
    stored_fields,
)
from toolkit.envelope import Envelope, WireError
from toolkit.wire import F_ROUTING_KEY

__all__ = ["RabbitDeadLetters"]

_DEAD_LETTER_ID: Final = re.compile(r"[0-9]{1,20}-[0-9a-f]{12}")


def _letter(message: Any) -> DeadLetter:
    toolkit, original = split_dead_letter(message.header.properties.headers)
    body = message.body
    try:
        envelope: Envelope | None = Envelope.from_fields(fields_of(original, body))
    except WireError:
        envelope = None
    except Exception:  # whatever a hand-made dead letter holds: not an envelope
        envelope = None
    reason = toolkit.pop("reason", "")
    group = toolkit.pop("group", "")
    return DeadLetter(
        str(message.header.properties.message_id or ""),
        reason,
        group,
        envelope,
        stored_fields(original, body),
        toolkit,
    )


class RabbitDeadLetters:
    """Implements DeadLetterStore for :class:`~toolkit.channels.rabbitmq.RabbitTransport`
    (a base class of it: uses its connection and declarations)."""

    link: Link

    #: what a dead-letter id looks like, for messages about one that does not
    dead_letter_id_example = "1795817879034-3f2a9c0d1b7e"

    @staticmethod
    def valid_dead_letter_id(text: str) -> bool:
        """An id as :func:`~toolkit.channels.rabbitmq.subscription.new_dead_letter_id` makes."""
        return _DEAD_LETTER_ID.fullmatch(text) is not None

    # The transport's (declared here for the type checker).
    def names(self, channel: str) -> ChannelNames:
        raise NotImplementedError

    async def ensure_dead(self, names: ChannelNames) -> None:
        raise NotImplementedError

    async def declare_group(self, names: ChannelNames, group: str) -> bool:
        raise NotImplementedError

    async def publish(self, messages: Sequence[Outgoing], what: str) -> None:
        raise NotImplementedError

    async def _taken(self, channel: str) -> tuple[aiormq.abc.AbstractChannel, list[Any]]:
        """A fresh AMQP channel holding every dead letter of ``channel``, unacknowledged."""
        names = self.names(channel)
        await self.ensure_dead(names)
        amqp = await self.link.channel()
        taken: list[Any] = []
        try:
            while True:
                message = await amqp.basic_get(names.dead, no_ack=False)
                if isinstance(message.delivery, spec.Basic.GetEmpty):
                    return amqp, taken
                taken.append(message)
        except BaseException as exc:
            await self._put_back(amqp)
            if isinstance(exc, Exception) and is_transient(exc):
                raise unavailable(f"reading the dead letters of {channel!r}", exc) from exc
            raise

    @staticmethod
    async def _put_back(amqp: aiormq.abc.AbstractChannel) -> None:
        """Close the channel: what it holds unacknowledged goes back in place."""
        if not amqp.is_closed:
            try:
                await amqp.close()
            except Exception as exc:
                if not is_transient(exc):
                    raise

    async def dead_letters(
        self, channel: str, *, routing_key: str | None = None, count: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters of ``channel``, oldest first, optionally of one routing key, at most ``count``."""
        amqp, taken = await self._taken(channel)
        await self._put_back(amqp)
        found: list[DeadLetter] = []
        for message in taken:
            letter = _letter(message)
            if routing_key is None or letter.fields.get(F_ROUTING_KEY) == routing_key.encode():
                found.append(letter)
                if count is not None and len(found) >= count:
                    break
        return found

    async def dead_letter(self, channel: str, dead_letter_id: str) -> DeadLetter | None:
        for letter in await self.dead_letters(channel):
            if letter.dead_letter_id == dead_letter_id:
                return letter
        return None

    async def replay(self, channel: str, dead_letter_ids: Sequence[str]) -> int:
        """Send dead letters back to the queue of the group that dead-lettered them:
        same headers and body, delivery count 1. Those that are not valid envelopes stay."""
        wanted = set(dead_letter_ids)
        names = self.names(channel)
        amqp, taken = await self._taken(channel)
        replayed = 0
        try:
            for message in taken:
                letter = _letter(message)
                if letter.dead_letter_id not in wanted or letter.envelope is None:
                    continue
                if not letter.group:
                    continue
                _, original = split_dead_letter(message.header.properties.headers)
                await self.declare_group(names, letter.group)
                # Into the queue of its priority: a replayed message keeps it.
                target = names.priority_queue(letter.group, priority_of(original))
                await self.publish(
                    [("", target, original, message.body, None)],
                    f"replaying a dead letter of {channel!r}",
                )
                await amqp.basic_ack(message.delivery.delivery_tag)
                replayed += 1
        finally:
            await self._put_back(amqp)
        return replayed

    async def purge(self, channel: str, dead_letter_ids: Sequence[str] | None = None) -> int:
        names = self.names(channel)
        if dead_letter_ids is None:
            await self.ensure_dead(names)
            amqp = await self.link.channel()
            try:
                ok = await amqp.queue_purge(names.dead)
            finally:
                await self._put_back(amqp)
            return int(ok.message_count or 0)
        wanted = set(dead_letter_ids)
        amqp, taken = await self._taken(channel)
        removed = 0
        try:
            for message in taken:
                if str(message.header.properties.message_id or "") in wanted:
                    await amqp.basic_ack(message.delivery.delivery_tag)
                    removed += 1
        finally:
            await self._put_back(amqp)
        return removed
