"""Turning schema text into Python source that can only ever be data.

Descriptions, docs and defaults come from schema files; whatever they hold
(quotes, newlines, triple quotes, code), these helpers render them as string
literals or comments that cannot change the meaning of the generated code.
The quote choice matches ``ruff format`` so the output is already formatted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

__all__ = [
    "LINE_LENGTH",
    "all_list",
    "class_head",
    "comment_lines",
    "comment_text",
    "doc_text",
    "docstring",
    "export_order",
    "import_order",
    "module_order",
    "py_bytes",
    "py_str",
    "wrap_assignment",
]


def py_str(text: str) -> str:
    """A one-line Python string literal for ``text``, quoted the way ruff formats it."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out: list[str] = [quote]
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == quote:
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif not char.isprintable():
            out.append(repr(char)[1:-1])
        else:
            out.append(char)
    out.append(quote)
    return "".join(out)


def py_bytes(value: bytes) -> str:
    """A bytes literal, quoted the way ruff formats it."""
    text = repr(value)
    inner = text[2:-1]
    if text.startswith("b'") and '"' not in inner:
        return 'b"' + inner.replace("\\'", "'") + '"'
    return text


#: Line length of the generated code (ruff's and black's default).
LINE_LENGTH = 88


def wrap_assignment(head: str, value: str, indent: str, width: int = LINE_LENGTH) -> str:
    """``head = value`` laid out as ruff formats it when it is too long for one line.

    Splits the outermost call of ``value`` at its parentheses (and, if still too
    long, after every top-level comma with a trailing comma) when ``head =
    call(`` fits on a line; else wraps ``value`` in parentheses of its own when
    it fits inside them; else leaves the line long, as ruff does.
    """
    line = f"{indent}{head} = {value}"
    if len(line) <= width:
        return line[len(indent) :]
    inner_indent = indent + "    "
    open_at = value.find("(")
    if value.endswith(")") and open_at > 0:
        callee, args = value[: open_at + 1], value[open_at + 1 : -1]
        if len(f"{indent}{head} = {callee}") <= width:
            if len(inner_indent) + len(args) <= width:
                return f"{head} = {callee}\n{inner_indent}{args}\n{indent})"
            parts = _split_top_level(args)
            body = "".join(f"{inner_indent}{part},\n" for part in parts)
            return f"{head} = {callee}\n{body}{indent})"
    if len(inner_indent) + len(value) <= width:
        return f"{head} = (\n{inner_indent}{value}\n{indent})"
    return line[len(indent) :]


def _split_top_level(args: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    escaped = False
    start = 0
    for index, char in enumerate(args):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(args[start:index].strip())
            start = index + 1
    tail = args[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def all_list(names: list[str] | tuple[str, ...]) -> str:
    """``__all__ = [...]`` on one line when it fits, else one name a line (as ruff formats it)."""
    if not names:
        return "__all__: list[str] = []"
    line = f"__all__ = [{', '.join(py_str(n) for n in names)}]"
    if len(line) <= LINE_LENGTH:
        return line
    return "__all__ = [\n" + "".join(f"    {py_str(n)},\n" for n in names) + "]"


def class_head(name: str, bases: str) -> str:
    """``class Name(bases):``, its bases on a line of their own when too long (as ruff does)."""
    line = f"class {name}({bases}):"
    if len(line) <= LINE_LENGTH:
        return line
    return f"class {name}(\n    {bases}\n):"


def doc_text(text: str) -> str:
    """What a docstring of ``text`` says: its shape as PEP 257 wants it.

    Lines lose trailing blanks, the first paragraph becomes the summary line
    (its lines joined by spaces) and a blank line separates it from the rest.
    """
    lines = [line.rstrip() for line in text.strip().replace("\r\n", "\n").split("\n")]
    if lines == [""]:
        return ""
    cut = lines.index("") if "" in lines else len(lines)
    summary = " ".join(line.strip() for line in lines[:cut])
    rest = lines[cut:]
    while rest and rest[0] == "":
        rest.pop(0)
    return "\n\n".join([summary, "\n".join(rest)]) if rest else summary


def _escape_doc(text: str) -> str:
    """``text`` made safe between triple double quotes: it reads back as itself."""
    if "\\" not in text and '"' not in text and text.replace("\n", "").isprintable():
        return text
    every_quote = '"""' in text
    last = len(text) - 1
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == '"' and (every_quote or index in (0, last)):
            out.append('\\"')
        elif char == "\n" or char.isprintable():
            out.append(char)
        else:
            out.append(repr(char)[1:-1])
    return "".join(out)


def docstring(text: str, indent: str) -> str:
    """A docstring literal (without leading indent) for ``text``, or '' when empty.

    A summary line, then (if there is more) a blank line and the rest, the
    closing quotes on their own line; quotes, backslashes and control
    characters in the text are escaped, so it can only ever be data.
    """
    text = _escape_doc(doc_text(text))
    if not text:
        return ""
    lines = text.split("\n")
    if len(lines) == 1:
        return f'"""{text}"""'
    body = "\n".join((indent + line) if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{indent}"""'


def comment_text(text: str) -> str:
    """``text`` safe inside one comment line: line breaks and control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def comment_lines(text: str) -> list[str]:
    """Lines of a ``#:`` comment for ``text``; control characters are escaped."""
    lines = []
    for line in text.strip().splitlines():
        safe = comment_text(line).rstrip()
        lines.append(f"#: {safe}" if safe else "#:")
    return lines


def _natural(left: str, right: str) -> int:
    """Compare as ruff does (the ``natord`` crate): runs of digits by value, the rest by character."""
    i = j = 0
    while True:
        while i < len(left) and left[i].isspace():
            i += 1
        while j < len(right) and right[j].isspace():
            j += 1
        if i == len(left) or j == len(right):
            return (i < len(left)) - (j < len(right))
        a, b = left[i], right[j]
        if a in _DIGITS and b in _DIGITS:
            # Leading zeros compare digit by digit ("fractional"); other numbers by length, then value.
            fractional = a == "0" or b == "0"
            bias = 0
            while True:
                da = i < len(left) and left[i] in _DIGITS
                db = j < len(right) and right[j] in _DIGITS
                if not (da and db):
                    if da != db:
                        return 1 if da else -1
                    if bias:
                        return bias
                    break
                if left[i] != right[j]:
                    order = -1 if left[i] < right[j] else 1
                    if fractional:
                        return order
                    bias = bias or order
                i += 1
                j += 1
            continue
        if a != b:
            return -1 if a < b else 1
        i += 1
        j += 1


_DIGITS = frozenset("0123456789")


def _kind(name: str) -> int:
    """0 for CONSTANTS, 1 for Classes, 2 for everything else (ruff's member types)."""
    # ruff (Rust) measures the length in UTF-8 bytes: a lone "Λ" is a constant to it.
    if len(name.encode()) > 1 and name.isupper():
        return 0
    return 1 if name[:1].isupper() else 2


_NUMBERS = re.compile(r"([0-9]+)")

NaturalKey = list[tuple[int, int, str]]


def _natural_key(name: str) -> NaturalKey | None:
    """A key that sorts identifiers as :func:`_natural` does, or None where it cannot.

    Exact for identifiers (all their other characters sort after the digits)
    whose numbers do not start with 0 (those compare digit by digit, which
    depends on the other name).
    """
    if not name.isidentifier():
        return None
    key: NaturalKey = []
    for index, part in enumerate(_NUMBERS.split(name)):
        if index % 2:
            if part[0] == "0":
                return None
            key.append((0, len(part), part))
        else:
            key.extend((1, 0, char) for char in part)
    return key


def _sorted(
    names: set[str],
    key: Callable[[str], tuple[Any, ...] | None],
    compare: Callable[[str, str], int],
) -> tuple[str, ...]:
    """``names`` sorted by ``key``; by ``compare`` (slower, exact) when a key cannot be made."""
    keys = {name: key(name) for name in names}
    if None in keys.values():
        return tuple(sorted(names, key=cmp_to_key(compare)))
    return tuple(sorted(names, key=lambda name: keys[name] or ()))


def export_order(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``__all__`` order as ruff's RUF022 wants it: CONSTANTS, then Classes, then the rest."""

    def compare(left: str, right: str) -> int:
        return (_kind(left) - _kind(right)) or _natural(left, right)

    def key(name: str) -> tuple[Any, ...] | None:
        natural = _natural_key(name)
        return None if natural is None else (_kind(name), natural)

    return _sorted(set(names), key, compare)


def import_order(names: list[str] | tuple[str, ...] | set[str]) -> tuple[str, ...]:
    """Names of a ``from`` import (``X`` or ``X as Y``) in isort's order: by type, then case-blind."""

    def compare(left: str, right: str) -> int:
        (name_l, _, as_l), (name_r, _, as_r) = left.partition(" as "), right.partition(" as ")
        return (
            (_kind(name_l) - _kind(name_r))
            or _natural(name_l.lower(), name_r.lower())
            or _natural(name_l, name_r)
            or _natural(as_l, as_r)
        )

    def key(name: str) -> tuple[Any, ...] | None:
        blind, natural = _natural_key(name.lower()), _natural_key(name)
        return None if blind is None or natural is None else (_kind(name), blind, natural)

    return _sorted(set(names), key, compare)


def module_order(modules: list[str] | tuple[str, ...] | set[str]) -> tuple[str, ...]:
    """Modules of ``from`` imports in ruff's order: relative ones furthest first, then by name."""

    def compare(left: str, right: str) -> int:
        dots = (len(right) - len(right.lstrip("."))) - (len(left) - len(left.lstrip(".")))
        return (
            dots
            or _natural(left.lstrip(".").lower(), right.lstrip(".").lower())
            or _natural(left, right)
        )

    return tuple(sorted(set(modules), key=cmp_to_key(compare)))
