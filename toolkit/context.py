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
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from toolkit.channels.base import Delivery

__all__ = ["CURRENT_DELIVERY", "current_delivery", "handling", "with_delivery"]

_T = TypeVar("_T")

#: the delivery whose handler is running in this context (None outside handlers)
CURRENT_DELIVERY: Final[contextvars.ContextVar[Delivery | None]] = contextvars.ContextVar(
    "toolkit_current_delivery", default=None
)


def current_delivery() -> Delivery | None:
    """The delivery whose handler is running in this context, or None."""
    return CURRENT_DELIVERY.get()


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
