"""Schema diagnostics beyond the corpus (tests/cases/err_*): properties and limits."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.build import load_system
from codegen.errors import SchemaErrors
from codegen.load import load_files
from codegen.schema import MAX_NESTING, SchemaFile
from codegen.shape import shape_problems
from codegen.types import TypeSyntaxError, parse_type


def _errors(folder: Path, text: str) -> str:
    (folder / "a.toml").write_text(text, encoding="utf-8")
    with pytest.raises(SchemaErrors) as caught:
        load_files(folder)
    return caught.value.render()


# -- the shape check agrees with msgspec ------------------------------------------------

_LEAVES = st.one_of(
    st.text(max_size=5), st.integers(), st.booleans(), st.just([]), st.just({}), st.just(["x"])
)
_KINDS = st.sampled_from(["queue", "stream", "struct", "enum", "pipe"])


def _table(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A table with its required keys (mostly), some optional ones, and now and then a stray key."""
    return st.one_of(
        st.fixed_dictionaries(required, optional=optional),
        st.fixed_dictionaries({}, optional={**required, **optional, "stray": _LEAVES}),
        _LEAVES,
    )


_FIELD = st.one_of(
    st.sampled_from(["int", "str"]),
    _table({"type": st.sampled_from(["int", "str"])}, {"doc": _LEAVES, "default": _LEAVES}),
)
_FIELDS = st.dictionaries(st.sampled_from(["a", "b"]), _FIELD, max_size=2) | _LEAVES
_MESSAGE = _table({"class": st.just("A") | _LEAVES}, {"fields": _FIELDS})
_DOCUMENT = _table(
    {"service": _table({"name": st.just("a") | _LEAVES}, {"description": _LEAVES})},
    {
        "channels": st.dictionaries(
            st.just("c"),
            _table(
                {"kind": _KINDS},
                {"subscribe": st.lists(st.just("a.*") | _LEAVES, max_size=2) | _LEAVES},
            ),
            max_size=1,
        ),
        "types": st.dictionaries(
            st.just("T"), _table({"kind": _KINDS}, {"fields": _FIELDS}), max_size=1
        ),
        "events": st.dictionaries(st.just("a.x"), _MESSAGE, max_size=1),
        "sends": st.dictionaries(
            st.just("b.x"), _table({"service": st.just("b") | _LEAVES}, {}), max_size=1
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENT)
def test_the_shape_check_accepts_exactly_what_msgspec_decodes(document: Any) -> None:
    if not isinstance(document, dict):
        return
    problems = shape_problems(document)
    try:
        msgspec.convert(document, SchemaFile, strict=True)
    except msgspec.ValidationError:
        assert problems, document
    else:
        assert problems == [], document
    for problem in problems:
        assert problem.message and problem.hint, problem


# -- nesting limits ---------------------------------------------------------------------


def test_toml_nesting_is_limited_outside_strings_and_comments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    head = '[service]\nname = "a"\n[events."a.x"]\nclass = "X"\n'

    def default(depth: int) -> str:
        return f'fields.n = {{ type = "list[int]", default = {"[" * depth}{"]" * depth} }}\n'

    assert "nest more than" not in _errors(tmp_path, head + default(MAX_NESTING - 1) + "oops = 1\n")
    rendered = _errors(tmp_path, head + default(MAX_NESTING))
    assert rendered.startswith(
        f'a.toml:5: events."a.x".fields.n: error: arrays and inline tables nest more than '
        f"{MAX_NESTING} levels deep here"
    )
    quoted = "[" * 100
    text = (
        f"# {quoted}\n[service]\nname = \"a\"\ndescription = '{quoted}'\n"
        f'[events."a.x"]\nclass = "X"\ndescription = """{quoted}\n{quoted}"""\n'
        f"fields.n = {{ type = \"int\", doc = '''{quoted}''', default = \"{quoted}\" }}\n"
    )
    assert "nest more than" not in _errors(tmp_path, text + "oops = 1\n")


def test_type_expressions_nest_at_most_the_limit() -> None:
    assert parse_type("optional[" * MAX_NESTING + "int" + "]" * MAX_NESTING)
    with pytest.raises(TypeSyntaxError, match=f"nests more than {MAX_NESTING} levels"):
        parse_type("list[" * (MAX_NESTING + 1) + "int" + "]" * (MAX_NESTING + 1))


def test_a_chain_of_structs_longer_than_the_recursion_limit_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    count = sys.getrecursionlimit() + 500
    parts = ['[service]\nname = "a"\n[events."a.x"]\nclass = "X"\nfields.first = "T0"\n']
    parts += [f'[types.T{i}]\nkind = "struct"\nfields.next = "T{i + 1}"\n' for i in range(count)]
    parts.append(f'[types.T{count}]\nkind = "struct"\nfields.value = "int"\n')
    Path("schemas").mkdir()
    Path("schemas/a.toml").write_text("".join(parts), encoding="utf-8")
    with pytest.raises(SchemaErrors) as caught:
        load_system(Path("schemas"))
    last = count - MAX_NESTING - 1  # T{count} nests 0 levels, each struct before it one more
    assert [(d.path, d.message) for d in caught.value.diagnostics] == [
        (
            f"types.T{last}.fields.next",
            f"type T{last + 1} nests {MAX_NESTING + 1} levels deep (more than {MAX_NESTING}), "
            "counting the structs it holds",
        )
    ]


def test_a_long_cycle_of_required_structs_is_one_error_found_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check must stay linear: a quadratic search hung on a chain of ~17,000 structs.
    monkeypatch.chdir(tmp_path)
    count = 20_000
    parts = ['[service]\nname = "a"\n[events."a.x"]\nclass = "X"\nfields.first = "optional[T0]"\n']
    parts += [
        f'[types.T{i}]\nkind = "struct"\nfields.next = "T{(i + 1) % count}"\n' for i in range(count)
    ]
    Path("schemas").mkdir()
    Path("schemas/a.toml").write_text("".join(parts), encoding="utf-8")
    with pytest.raises(SchemaErrors) as caught:
        load_system(Path("schemas"))
    [error] = caught.value.diagnostics
    assert "refer to each other in a cycle 20000 levels deep" in error.message
    assert len(error.message) < 400


def test_a_cycle_of_required_structs_is_named_once_with_a_short_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    count = 10  # under the nesting limit: only the "never built" rule applies
    parts = ['[service]\nname = "a"\n[events."a.x"]\nclass = "X"\nfields.first = "optional[T0]"\n']
    parts += [
        f'[types.T{i}]\nkind = "struct"\nfields.next = "T{(i + 1) % count}"\n' for i in range(count)
    ]
    Path("schemas").mkdir()
    Path("schemas/a.toml").write_text("".join(parts), encoding="utf-8")
    with pytest.raises(SchemaErrors) as caught:
        load_system(Path("schemas"))
    [error] = caught.value.diagnostics
    assert error.path == "types.T0.fields.next"
    assert error.message == (
        "struct 'T0' can never be built: it requires itself "
        "(T0.next -> T1.next -> T2.next -> ... 5 more ... -> T8.next -> T9.next -> T0)"
    )
