"""Field type expressions: parsing ``list[optional[Address]]`` into a typed tree.

Grammar (whitespace is ignored)::

    type     := scalar | NAME | "list[" type "]" | "dict[str," type "]"
              | "optional[" type "]" | "literal[" value ("," value)* "]"
    scalar   := str | int | float | bool | bytes | datetime | date | time
              | uuid | decimal

``list``, ``dict`` and ``optional`` nest at most
:data:`~codegen.schema.MAX_NESTING` levels deep.
    value    := NAME | INTEGER | quoted string

``NAME`` refers to a named type (struct or enum) declared in the same file.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid

import msgspec

from codegen.schema import MAX_NESTING

__all__ = [
    "SCALARS",
    "DictType",
    "ListType",
    "LiteralType",
    "NamedType",
    "OptionalType",
    "ScalarType",
    "TypeExpr",
    "TypeSyntaxError",
    "named_types_in",
    "parse_type",
    "scalar_text",
]

SCALARS: frozenset[str] = frozenset(
    {"str", "int", "float", "bool", "bytes", "datetime", "date", "time", "uuid", "decimal"}
)


class ScalarType(msgspec.Struct, frozen=True):
    name: str

    def __str__(self) -> str:
        return self.name


class NamedType(msgspec.Struct, frozen=True):
    name: str

    def __str__(self) -> str:
        return self.name


class ListType(msgspec.Struct, frozen=True):
    item: TypeExpr

    def __str__(self) -> str:
        return f"list[{self.item}]"


class DictType(msgspec.Struct, frozen=True):
    value: TypeExpr

    def __str__(self) -> str:
        return f"dict[str, {self.value}]"


class OptionalType(msgspec.Struct, frozen=True):
    inner: TypeExpr

    def __str__(self) -> str:
        return f"optional[{self.inner}]"


class LiteralType(msgspec.Struct, frozen=True):
    values: tuple[str | int, ...]

    def __str__(self) -> str:
        return "literal[" + ", ".join(_literal_text(v) for v in self.values) + "]"


TypeExpr = ScalarType | NamedType | ListType | DictType | OptionalType | LiteralType


def _literal_text(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TypeSyntaxError(ValueError):
    """A type expression that does not parse; the message says how to fix it."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<int>-?[0-9]+)
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<punct>[\[\],])
    )""",
    re.VERBOSE,
)

_HINT = (
    "write a scalar (str, int, float, bool, bytes, datetime, date, time, uuid, decimal), "
    "a named type, list[T], dict[str, T], optional[T] or literal[a, b]"
)


def _shown(text: str) -> str:
    """A type as messages quote it: cut short, so a pathological one stays readable."""
    return text if len(text) <= 60 else text[:40] + "..."


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = _shown(text)
        self.depth = 0
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            match = _TOKEN.match(stripped, pos)
            if match is None or match.end() == pos:
                raise TypeSyntaxError(
                    f"unexpected character {stripped[pos:].lstrip()[:1]!r} in type {self.text!r}; "
                    + _HINT
                )
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise TypeSyntaxError(f"type {self.text!r} ends too early; " + _HINT)
        if expected is not None and token[1] != expected:
            raise TypeSyntaxError(
                f"expected {expected!r} but found {token[1]!r} in type {self.text!r}"
            )
        self.index += 1
        return token

    def parse(self) -> TypeExpr:
        if not self.tokens:
            raise TypeSyntaxError("empty type; " + _HINT)
        result = self.parse_type()
        extra = self.peek()
        if extra is not None:
            raise TypeSyntaxError(f"unexpected {extra[1]!r} after the end of type {self.text!r}")
        return result

    def parse_type(self) -> TypeExpr:
        kind, word = self.take()
        if kind != "name":
            raise TypeSyntaxError(
                f"expected a type name but found {word!r} in type {self.text!r}; " + _HINT
            )
        nxt = self.peek()
        generic = nxt is not None and nxt[1] == "["
        if word in ("list", "optional", "dict", "literal"):
            if not generic:
                raise TypeSyntaxError(f"{word} needs a type argument, e.g. {_example(word)}")
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise TypeSyntaxError(
                    f"type {self.text!r} nests more than {MAX_NESTING} levels of list, dict "
                    f"and optional; the schema format allows {MAX_NESTING}"
                )
            self.take("[")
            result: TypeExpr
            if word == "list":
                result = ListType(self.parse_type())
            elif word == "optional":
                result = OptionalType(self.parse_type())
            elif word == "dict":
                key = self.parse_type()
                if key != ScalarType("str"):
                    raise TypeSyntaxError(
                        f"dict keys must be str (JSON object keys are strings), not {key}; "
                        "write dict[str, T]"
                    )
                self.take(",")
                result = DictType(self.parse_type())
            else:
                result = LiteralType(self.parse_literal_values())
            self.take("]")
            self.depth -= 1
            return result
        if generic:
            raise TypeSyntaxError(f"{word} takes no type arguments in type {self.text!r}; " + _HINT)
        if word in SCALARS:
            return ScalarType(word)
        return NamedType(word)

    def parse_literal_values(self) -> tuple[str | int, ...]:
        values: list[str | int] = []
        while True:
            kind, word = self.take()
            if kind == "int":
                values.append(int(word))
            elif kind == "str":
                values.append(word[1:-1].encode().decode("unicode_escape"))
            elif kind == "name":
                values.append(word)
            else:
                raise TypeSyntaxError(
                    f"expected a literal value but found {word!r} in type {self.text!r}"
                )
            nxt = self.peek()
            if nxt is not None and nxt[1] == ",":
                self.take(",")
                continue
            break
        if len(set(values)) != len(values):
            raise TypeSyntaxError(f"literal values repeat in type {self.text!r}")
        return tuple(values)


def _example(word: str) -> str:
    return {
        "list": "list[str]",
        "optional": "optional[int]",
        "dict": "dict[str, int]",
        "literal": 'literal["low", "high"]',
    }[word]


def parse_type(text: str) -> TypeExpr:
    """Parse a type expression; raises :class:`TypeSyntaxError` with a fix hint."""
    return _Parser(text).parse()


def named_types_in(expr: TypeExpr) -> list[str]:
    """Every named type an expression refers to, in order of appearance."""
    if isinstance(expr, NamedType):
        return [expr.name]
    if isinstance(expr, ListType):
        return named_types_in(expr.item)
    if isinstance(expr, DictType):
        return named_types_in(expr.value)
    if isinstance(expr, OptionalType):
        return named_types_in(expr.inner)
    return []


#: Scalars whose values are written as text, and the type that text parses to.
_TEXT_SCALARS: dict[str, type] = {
    "datetime": datetime.datetime,
    "date": datetime.date,
    "time": datetime.time,
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
}


def scalar_text(name: str, value: object) -> str | None:
    """The canonical text of a datetime, date, time, uuid or decimal value from a schema file.

    TOML gives a date or time as a value of its own or as a string, a decimal
    as a string or a number. Returns None when ``value`` is not one of them.
    """
    pytype = _TEXT_SCALARS[name]
    if isinstance(value, datetime.date | datetime.time) and isinstance(value, pytype):
        if name == "date" and isinstance(value, datetime.datetime):
            return None
        return value.isoformat()
    if isinstance(value, str):
        try:
            parsed: object = msgspec.convert(value, pytype)
        except msgspec.ValidationError:
            return None
        if isinstance(parsed, datetime.date | datetime.time):
            return parsed.isoformat()
        return str(parsed)
    if name == "decimal" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
