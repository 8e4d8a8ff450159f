"""Turning schema text into Python source that can only ever be data.

Descriptions, docs and defaults come from schema files; whatever they hold
(quotes, newlines, triple quotes, code), these helpers render them as string
literals or comments that cannot change the meaning of the generated code.
The quote choice matches ``ruff format`` so the output is already formatted.
"""

from __future__ import annotations

__all__ = [
    "comment_lines",
    "docstring",
    "export_order",
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


def wrap_assignment(head: str, value: str, indent: str, width: int = 88) -> str:
    """``head = value`` laid out as ruff formats it when it is too long for one line.

    Splits the outermost call of ``value`` at its parentheses (and, if still too
    long, after every top-level comma with a trailing comma).
    """
    line = f"{indent}{head} = {value}"
    if len(line) <= width or not value.endswith(")") or "(" not in value:
        return line[len(indent) :]
    open_at = value.index("(")
    callee, args = value[: open_at + 1], value[open_at + 1 : -1]
    inner_indent = indent + "    "
    if len(inner_indent) + len(args) <= width:
        return f"{head} = {callee}\n{inner_indent}{args}\n{indent})"
    parts = _split_top_level(args)
    body = "".join(f"{inner_indent}{part},\n" for part in parts)
    return f"{head} = {callee}\n{body}{indent})"


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


def _plain(text: str) -> bool:
    """True when ``text`` can sit inside a triple-quoted docstring unchanged."""
    if '"""' in text or "\\" in text or text.endswith('"') or text.startswith('"'):
        return False
    return all(char.isprintable() or char == "\n" for char in text)


def docstring(text: str, indent: str) -> str:
    """A docstring literal (without leading indent) for ``text``, or '' when empty."""
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    if not text:
        return ""
    if not _plain(text):
        return py_str(text)
    lines = text.split("\n")
    if len(lines) == 1:
        return f'"""{text}"""'
    body = "\n".join((indent + line) if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{indent}"""'


def comment_lines(text: str) -> list[str]:
    """Lines of a ``#:`` comment for ``text``; control characters are escaped."""
    lines = []
    for line in text.strip().splitlines():
        safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line).rstrip()
        lines.append(f"#: {safe}" if safe else "#:")
    return lines


def export_order(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``__all__`` order as ruff's RUF022 wants it: CONSTANTS, then Classes, then functions."""

    def key(name: str) -> tuple[int, str]:
        if name.isupper():
            return (0, name)
        if name[:1].isupper():
            return (1, name)
        return (2, name)

    return tuple(sorted(set(names), key=key))
