"""The message being handled, for everything its handler calls (a context variable).

The dispatcher sets it around each handler call; a bus reads it when it
builds an envelope, so that a message sent from inside a handler continues
the conversation without ``caused_by=``: the handled message's id as
causation id, its correlation id, and the metadata keys the sending service
declares as propagated (``[service] propagate`` in its schema).

Each handler sees its own delivery: async handlers running at once
(``concurrency`` > 1) each run in a task, with a copy of the context. Code
that calls a handler somewhere else, a worker thread say, takes the context
along with :func:`with_delivery` (or ``contextvars.copy_context().run``
while the delivery is current), as ``asyncio.to_thread`` does by itself.

With exactly-once effect (``RunOptions(exactly_once=True)`` on PostgreSQL,
docs/delivery.md#exactly-once-effect-on-postgresql) the consumer also sets
the transaction the handler's writes belong to: :func:`current_transaction`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from toolkit.channels.base import Delivery

__all__ = [
    "CURRENT_DELIVERY",
    "CURRENT_TRANSACTION",
    "current_delivery",
    "current_transaction",
    "handling",
    "with_delivery",
]

_T = TypeVar("_T")

#: the delivery whose handler is running in this context (None outside handlers)
CURRENT_DELIVERY: Final[contextvars.ContextVar[Delivery | None]] = contextvars.ContextVar(
    "toolkit_current_delivery", default=None
)


#: the connection, in the transaction of the step in hand, whose writes commit with the
#: message's record and acknowledgement (exactly-once effect; None otherwise)
CURRENT_TRANSACTION: Final[contextvars.ContextVar[AsyncConnection[Any] | None]] = (
    contextvars.ContextVar("toolkit_current_transaction", default=None)
)


def current_delivery() -> Delivery | None:
    """The delivery whose handler is running in this context, or None."""
    return CURRENT_DELIVERY.get()


def current_transaction() -> AsyncConnection[Any] | None:
    """With exactly-once effect: the psycopg ``AsyncConnection``, inside the transaction
    (a savepoint of it per message), that commits the handler's writes together with
    the message's record and acknowledgement. None when the consumer does not run
    with exactly-once effect.

    Use it from a coroutine handler (``await conn.execute(...)``); never commit,
    roll back or close it (psycopg refuses a commit inside it; raise to undo).
    A synchronous handler in a worker thread cannot use the loop's connection:
    there it raises RuntimeError.
    """
    conn = CURRENT_TRANSACTION.get()
    if conn is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "current_transaction() is an async psycopg connection of the consumer's "
                "event loop, which a synchronous handler in a worker thread cannot use: "
                "write the handler as `async def` (docs/delivery.md#exactly-once-effect-on-postgresql)"
            ) from None
    return conn


@contextmanager
def handling(delivery: Delivery) -> Iterator[None]:
    """Make ``delivery`` the one being handled inside the ``with`` block."""
    token = CURRENT_DELIVERY.set(delivery)
    try:
        yield
    finally:
        CURRENT_DELIVERY.reset(token)


def with_delivery(delivery: Delivery, function: Callable[..., _T], *args: Any) -> Callable[[], _T]:
    """``function(*args)``, to call elsewhere (a worker thread) in a copy of the current
    context in which ``delivery`` is the one being handled."""
    context = contextvars.copy_context()
    context.run(CURRENT_DELIVERY.set, delivery)
    return functools.partial(context.run, function, *args)
