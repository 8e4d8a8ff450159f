"""Names that pass validation generate working code; names that cannot work are refused."""

from __future__ import annotations

import ast
import datetime
import decimal
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from codegen.build.names import RESERVED_CLASS_NAMES
from codegen.errors import Diagnostic, SchemaErrors
from codegen.generate import generate_files, write_files
from tests.cli import CASES, ROOT, toolkit_cli
from toolkit.testing import InMemorySystem

A_SERVICE = """\
[service]
name = "{name}"

[channels.{name}_commands]
kind = "queue"
commands = true

[commands."{name}.do"]
class = "{cls}"
{fields}
"""


def _refused(tmp_path: Path, *texts: str) -> list[Diagnostic]:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for index, text in enumerate(texts):
        (schemas / f"s{index}.toml").write_text(text, encoding="utf-8")
    with pytest.raises(SchemaErrors) as info:
        generate_files(schemas)
    return info.value.diagnostics


@pytest.fixture
def python_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The python_names case, generated now, importable as the package ``names_generated``."""
    write_files(generate_files(CASES / "python_names" / "schemas"), tmp_path / "names_generated")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "names_generated"
    for module in [m for m in sys.modules if m.startswith("names_generated")]:
        del sys.modules[module]


def test_fields_named_like_modules_and_builtins_work(python_names: str) -> None:
    """``uuid``, ``int``, ``msgspec``, ``list`` … as field names: aliases keep the types right."""
    messages = importlib.import_module(f"{python_names}.a.messages")
    shadow = messages.Shadow(
        uuid=uuid.UUID(int=1), count=2, type="t", id=3, self=4, field=5, userId="u"
    )
    assert (shadow.msgspec, shadow.int, shadow.str, shadow.list, shadow.dict) == (
        "m",
        1,
        "s",
        [],
        {},
    )
    assert shadow.other_id == uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert shadow.datetime == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert (shadow.decimal, shadow.price) == (decimal.Decimal("1.5"), decimal.Decimal("2.5"))
    assert (shadow.float, shadow.bool, shadow.bytes) == (1.5, True, b"b")
    assert shadow.odd is messages.Odd.V_MISSING_
    wire = msgspec.json.encode(shadow)
    assert msgspec.json.decode(wire, type=messages.Shadow) == shadow
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(wire.replace(b'"count":2', b'"count":"2"'), type=messages.Shadow)


def test_enum_values_python_reserves_get_members(python_names: str) -> None:
    odd = importlib.import_module(f"{python_names}.a.messages").Odd
    assert {m.name: m.value for m in odd} == {
        "V_MISSING_": "_missing_",
        "V__INIT__": "__init__",
        "NAME": "name",
        "VALUE": "value",
        "MRO": "mro",
    }


async def test_a_foreign_class_taken_by_an_own_class_is_imported_under_an_alias(
    python_names: str,
) -> None:
    service_map = importlib.import_module(python_names).SERVICE_MAP
    b = importlib.import_module(f"{python_names}.b")
    a = importlib.import_module(f"{python_names}.a")
    assert b.Create is not a.Create
    handled: list[object] = []

    class Handlers:
        def __getattr__(self, name: str) -> object:
            return lambda message, meta: handled.append(message)

    system = InMemorySystem(service_map)
    await system.bind(a.bind(Handlers()))
    await b.BPublisher(system.transport).send_a_create(a.Create(n=1))
    await system.run_all()
    assert handled == [a.Create(n=1)]


def test_names_python_would_read_as_other_names_are_refused(tmp_path: Path) -> None:
    fields = 'fields."\ufb01eld" = "int"\nfields.field = "str"'
    problems = _refused(tmp_path, A_SERVICE.format(name="a", cls="\uff24oit", fields=fields))
    messages = {d.path: d.message for d in problems}
    assert "is read by Python as 'field' (NFKC)" in messages['commands."a.do".fields."\ufb01eld"']
    assert "is read by Python as 'Doit' (NFKC)" in messages['commands."a.do".class']


def test_enum_values_giving_the_same_member_are_refused(tmp_path: Path) -> None:
    text = A_SERVICE.format(name="a", cls="Do", fields='fields.e = "E"') + (
        '[types.E]\nkind = "enum"\nvalues = ["_missing_", "v_missing_", "\uff26", "f"]\n'
    )
    problems = [d.message for d in _refused(tmp_path, text)]
    assert any(
        "gives member name V_MISSING_, which clashes with value '_missing_'" in m for m in problems
    )
    assert any("gives member name F, which clashes with value '\uff26'" in m for m in problems)


def test_a_service_named_like_a_generated_module_is_refused(tmp_path: Path) -> None:
    [problem] = _refused(tmp_path, A_SERVICE.format(name="service_map", cls="Do", fields=""))
    assert (
        problem.message
        == "service name 'service_map' is taken by the generated module service_map.py"
    )


def test_upper_case_field_names_are_refused(tmp_path: Path) -> None:
    text = A_SERVICE.format(name="a", cls="Do", fields='fields.Do = "int"\nfields.userId = "int"')
    [problem] = _refused(tmp_path, text)
    assert problem.path == 'commands."a.do".fields.Do'
    assert "starts with an upper-case letter" in problem.message
    assert "wire_name" in problem.hint


def test_class_names_of_the_generated_classes_are_refused(tmp_path: Path) -> None:
    [problem] = _refused(tmp_path, A_SERVICE.format(name="user", cls="UserPublisher", fields=""))
    assert problem.message == "class name 'UserPublisher' is the name of a class generated for user"


def test_required_recursive_structs_are_refused(tmp_path: Path) -> None:
    text = A_SERVICE.format(name="a", cls="Do", fields='fields.tree = "Tree"') + (
        '[types.Node]\nkind = "struct"\nfields.child = "Node"\n'
        '[types.Ping]\nkind = "struct"\nfields.pong = "Pong"\n'
        '[types.Pong]\nkind = "struct"\nfields.ping = "Ping"\n'
        '[types.Tree]\nkind = "struct"\nfields.kids = "list[Tree]"\nfields.up = "optional[Tree]"\n'
    )
    problems = {d.path: d.message for d in _refused(tmp_path, text)}
    assert problems == {
        "types.Node.fields.child": "struct 'Node' can never be built: it requires itself "
        "(Node.child -> Node)",
        "types.Ping.fields.pong": "struct 'Ping' can never be built: it requires itself "
        "(Ping.pong -> Pong.ping -> Ping)",
    }


def test_two_foreign_classes_of_one_name_never_merge(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for name in ("a", "b", "d"):
        text = A_SERVICE.format(name=name, cls="Do", fields='fields.x = "int"')
        (schemas / f"{name}.toml").write_text(text, encoding="utf-8")
    sends = '[sends."a.do"]\nservice = "a"\n[sends."b.do"]\nservice = "b"\n'
    (schemas / "c.toml").write_text('[service]\nname = "c"\n' + sends, encoding="utf-8")
    publisher = generate_files(schemas)["c/publisher.py"]
    assert "from ..a.messages import Do\n" in publisher
    assert "from ..b.messages import Do as BDo\n" in publisher
    assert "command: BDo," in publisher
    # d's Do: 'Do' is a's, 'DDo' is c's own class.
    own = A_SERVICE.format(name="c", cls="DDo", fields="")
    (schemas / "c.toml").write_text(
        own + '[sends."a.do"]\nservice = "a"\n[sends."d.do"]\nservice = "d"\n'
    )
    with pytest.raises(SchemaErrors) as info:
        generate_files(schemas)
    [problem] = info.value.diagnostics
    assert problem.path == 'sends."d.do"'
    assert "d's class Do cannot be imported here" in problem.message


def test_reserved_class_names_cover_what_generated_modules_bind() -> None:
    """A message class may not take a name a generated module imports or defines."""
    for path in [*(ROOT / "generated").rglob("*.py"), *CASES.glob("*/expected/**/*.py")]:
        if (path.parent / "service_map.py").exists():
            continue  # the package's own modules hold no message class
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.FunctionDef):
                targets = node.targets if isinstance(node, ast.Assign) else [node]
                names = {getattr(t, "id", getattr(t, "name", "")) for t in targets}
            else:
                continue
            upper = {n for n in names if n[:1].isupper()}
            assert upper <= RESERVED_CLASS_NAMES, (path, upper - RESERVED_CLASS_NAMES)


def test_a_schema_file_name_cannot_inject_code(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    name = "a\nraise SystemExit('injected')\n#.toml"
    (schemas / name).write_text(A_SERVICE.format(name="a", cls="Do", fields='fields.x = "int"'))
    files = generate_files(schemas)
    for path, text in files.items():
        if path.endswith(".py"):
            first, second = text.splitlines()[:2]
            assert first.startswith("# Code generated by `toolkit generate` from "), path
            assert second.startswith("# source sha256: "), path
            assert "raise SystemExit" not in [line.strip() for line in text.splitlines()]
    assert (
        files["a/messages.py"]
        .splitlines()[0]
        .endswith("/schemas/a\\nraise SystemExit('injected')\\n#.toml. DO NOT EDIT.")
    )


def test_the_command_line_refuses_with_exit_2(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "a.toml").write_text(A_SERVICE.format(name="a", cls="Do", fields='fields.X = "int"'))
    done = toolkit_cli("generate", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert 'schemas/a.toml:10: commands."a.do".fields.X: error: field name' in done.stderr
