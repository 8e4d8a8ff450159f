"""Durations written as text (``90s``, ``30m``, ``24h``, ``7d`` or seconds).

A leaf module: it imports nothing else of the toolkit, so the generator reads
a schema's deduplication window with the same rules as ``toolkit run
--deduplicate``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["parse_window"]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_window(text: str) -> float:
    """Seconds of a window written ``90s``, ``30m``, ``24h``, ``7d`` or as plain seconds.

    ``ValueError`` says what is wrong, quoting ``text``.
    """
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not a window: write 90s, 30m, 24h, 7d or seconds") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{text!r} must be a positive, finite window")
    return seconds
