"""Message priorities: the ``priority`` header a publisher sets, 0 (the default) to 9.

A consumer with a backlog takes higher priorities first; equal priorities
keep their order. The default per routing key comes from the schema (the
service map's ``priorities``); a send may override it. A transport that
orders by priority sets ``prioritizes_messages = True`` (the capability the
bus checks). See ``docs/delivery.md#priorities``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "PrioritiesUnsupportedError",
    "check_priority",
    "unsupported",
]

MIN_PRIORITY: Final = 0
#: the highest priority; ten levels are enough to order work and few enough for
#: a pipe to keep a queue (or stream) per level
MAX_PRIORITY: Final = 9


class PrioritiesUnsupportedError(TypeError):
    """A priority above 0 was asked of a pipe that does not order by priority.

    Transports that can set the class attribute ``prioritizes_messages = True``.
    """


def unsupported(what: str) -> str:
    return (
        f"{what} cannot order messages by priority (priority= or a schema default above 0): "
        "see docs/delivery.md#priorities for the pipes that can"
    )


def check_priority(value: object) -> int:
    """``value`` as a priority; ``TypeError`` or ``ValueError`` naming the range otherwise."""
    if value.__class__ is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"priority must be an int from 0 to 9, not {type(value).__name__}")
        value = int(value)
    assert isinstance(value, int)
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"priority must be from {MIN_PRIORITY} to {MAX_PRIORITY}, not {value}")
    return value
