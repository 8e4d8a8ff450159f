"""Text from the wire, made safe for the operator's terminal.

Header values, reasons and error messages come from whoever wrote the entry.
Printed raw, an escape sequence in a ``message_id`` clears the screen or sets
the window title, and a tab or a newline breaks the columns. :func:`shown`
escapes every character that is not printable; :func:`columns` lines up
tables by the cells characters take on a terminal (two for East Asian wide
characters, none for combining marks). Every place the CLI prints
wire-derived text goes through here, log lines included (:class:`SafeFormatter`).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence

__all__ = ["SafeFormatter", "columns", "shown", "width"]


def shown(value: str | bytes) -> str:
    """``value`` with control and other unprintable characters (and ``\\``) escaped
    as in a Python literal; bytes that are not UTF-8 as ``\\xNN``."""
    # surrogateescape: a byte that is not UTF-8 becomes U+DC80..U+DCFF, shown as \xNN below.
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(c) for c in text)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if "\udc80" <= char <= "\udcff":
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char if char.isprintable() else repr(char)[1:-1]


def width(text: str) -> int:
    """Terminal cells ``text`` (already :func:`shown`) takes."""
    if text.isascii():
        return len(text)
    cells = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            continue
        cells += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return cells


def columns(rows: Sequence[Sequence[str | bytes]], right: Sequence[int] = ()) -> list[str]:
    """Lines of a table: each cell :func:`shown`, columns as wide as their widest
    cell, two spaces apart; the last column is not padded. ``right``: columns
    aligned to the right."""
    cells = [[shown(cell) for cell in row] for row in rows]
    if not cells:
        return []
    count = len(cells[0])
    widths = [max(width(row[i]) for row in cells) for i in range(count)]
    lines = []
    for row in cells:
        parts = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - width(cell))
            if i == count - 1 and i not in right:
                parts.append(cell)
            else:
                parts.append(pad + cell if i in right else cell + pad)
        lines.append("  ".join(parts))
    return lines


class SafeFormatter(logging.Formatter):
    """Log lines with wire-derived text escaped, line by line: the newlines of a
    traceback stay, any other control character is shown escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(shown(line) for line in super().format(record).split("\n"))
