from __future__ import annotations

import ast
import re
from functools import cmp_to_key

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.python.pytext import _natural, _natural_key, comment_lines, docstring, py_str
from codegen.system.jsonschema import plain_text
from codegen.types import (
    DictType,
    ListType,
    LiteralType,
    NamedType,
    OptionalType,
    ScalarType,
    TypeSyntaxError,
    parse_type,
)


def test_type_expressions_parse_into_trees() -> None:
    assert parse_type("dict[str, list[optional[Address]]]") == DictType(
        ListType(OptionalType(NamedType("Address")))
    )
    assert parse_type(' literal[ low, "high", 3 ] ') == LiteralType(("low", "high", 3))
    assert parse_type("uuid") == ScalarType("uuid")
    assert str(parse_type("dict[str,list[int]]")) == "dict[str, list[int]]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty type"),
        ("list", "list needs a type argument, e.g. list[str]"),
        ("list[str", "ends too early"),
        ("dict[int, str]", "dict keys must be str"),
        ("str[int]", "str takes no type arguments"),
        ("list[str]]", "unexpected ']' after the end"),
        ("int | None", "unexpected character '|'"),
        ("literal[a, a]", "literal values repeat"),
    ],
)
def test_bad_type_expressions_explain_the_fix(text: str, message: str) -> None:
    with pytest.raises(TypeSyntaxError, match=None) as info:
        parse_type(text)
    assert message in str(info.value)


@given(st.text())
def test_py_str_is_always_a_literal_of_the_same_text(text: str) -> None:
    literal = py_str(text)
    tree = ast.parse(literal, mode="eval")
    assert isinstance(tree.body, ast.Constant) and tree.body.value == text
    assert "\n" not in literal


@given(st.text())
def test_docstrings_and_comments_cannot_escape(text: str) -> None:
    source = f"class A:\n    {docstring(text, '    ') or 'pass'}\n"
    for line in comment_lines(text):
        source += f"    {line}\n"
    source += "    x = 1\n"
    module = ast.parse(source)
    [cls] = module.body
    assert isinstance(cls, ast.ClassDef)
    assert [type(node) for node in cls.body][-1] is ast.Assign
    assert len(cls.body) <= 2


@given(st.text())
def test_docstrings_have_the_pep_257_shape(text: str) -> None:
    """Triple double quotes; a summary line, then a blank line and the rest; closing quotes
    on a line of their own when there is more than one line."""
    literal = docstring(text, "    ")
    if not literal:
        assert not text.strip()
        return
    assert literal.startswith('"""') and literal.endswith('"""')
    value = ast.literal_eval(literal)
    lines = value.split("\n")
    assert lines[0] and not lines[0][0].isspace()
    if len(lines) > 1:
        assert lines[1] == "" and lines[2].strip() and literal.endswith('\n    """')


def test_a_docstring_summary_is_the_first_paragraph_on_one_line() -> None:
    assert docstring("A view.\nContract: a.B.", "    ") == '"""A view. Contract: a.B."""'
    assert docstring("Sum\nmary.\n\nRest\n  more.", "") == '"""Sum mary.\n\nRest\n  more.\n"""'
    assert docstring('"quoted"', "") == '"""\\"quoted\\""""'


@given(st.text())
def test_the_docs_show_the_generated_docstring(text: str) -> None:
    """The AsyncAPI descriptions come from the model's plain text, not from the rendered
    literal; they still say exactly what the generated class's docstring says."""
    source = f"class A:\n    {docstring(text, '    ') or 'pass'}\n"
    [cls] = ast.parse(source).body
    assert isinstance(cls, ast.ClassDef)
    shown = ast.get_docstring(cls, clean=True) or ""
    assert plain_text(text) == shown.replace("``", "`")


_identifier = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,6}\Z") | st.sampled_from(
    ["A", "a", "A1", "A01", "A10", "a2", "SERVICE", "SERVICE_MAP", "\u039b", "\u00c4", "x0"]
)


@given(st.lists(_identifier, max_size=8))
def test_the_fast_sort_key_agrees_with_ruffs_comparison(names: list[str]) -> None:
    """Where a sort key can be made (no number starting with 0), it orders as ruff does."""
    keyed = [n for n in names if _natural_key(n) is not None]
    assert sorted(keyed, key=lambda n: _natural_key(n) or []) == sorted(
        keyed, key=cmp_to_key(_natural)
    )
    assert all(_natural_key(n) is None for n in names if re.search(r"(?<![0-9])0", n))
