"""Property: whatever the names, ``generate`` refuses them (SchemaErrors, exit 2) or writes
modules that import, bind, send and round-trip a message.

Names come from the whole identifier space: keywords, builtins, names the generated
code uses, dunders and sunders, non-ASCII letters, pairs that Python's NFKC
normalization merges, upper-case names; for fields, classes, enum values, services
and routing keys.
"""

from __future__ import annotations

import builtins
import importlib
import itertools
import json
import keyword
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from codegen.errors import SchemaErrors
from codegen.generate import generate_files, write_files
from toolkit import InMemoryTransport
from toolkit.commands._demo import sample


def _names(plain: str, works: list[str], refused: list[str]) -> st.SearchStrategy[str]:
    """Names for one role: mostly plain ones and ones that must work, one in ten that cannot."""
    valid = [st.from_regex(plain), st.sampled_from(works)]
    # sampled_from rather than one_of: one_of draws its last branches far more often
    branches = [*valid * 9, st.sampled_from(refused), _ANY_LETTERS]
    return st.sampled_from(branches).flatmap(lambda branch: branch)


#: letters, digits and connectors of every script: valid identifiers, or not
_ANY_LETTERS = st.text(
    st.characters(categories=["Lu", "Ll", "Lt", "Lo", "Nl", "Nd", "Pc"]), min_size=1, max_size=5
)


_BUILTINS = sorted(n for n in dir(builtins) if not n.startswith("_"))
#: (type, default): a default of None means none is written
_FIELD_TYPES: list[tuple[str, Any]] = [
    ("str", None),
    ("str", "x"),
    ("int", 1),
    ("int", None),
    ("float", 1.5),
    ("bool", True),
    ("bytes", "b"),
    ("uuid", None),
    ("uuid", "12345678-1234-5678-1234-567812345678"),
    ("datetime", None),
    ("decimal", "1.5"),
    ("list[int]", []),
    ("dict[str, str]", {}),
    ("optional[str]", None),
    ("E", None),
]
_fields = st.dictionaries(
    _names(
        r"\A[a-z][a-z0-9_]{0,7}\Z",
        # what the generated modules import, builtins, names msgspec or enum use, non-ASCII
        ["msgspec", "uuid", "datetime", "decimal", "enum", "typing", "builtins", "annotations"]
        + ["field", "self", "cls", "int", "str", "list", "dict", "float", "bool", "bytes", "type"]
        + ["id", "bind", "publisher_bus", "service_map", "mro", "name", "value", "userId", "x1"]
        + ["match", "case", "\u00df", "\u03bb", "\u5b57", "\u01c5x", "\u00e4pfel", *_BUILTINS[::9]],
        # keywords, underscores, upper case, names NFKC changes
        [
            *keyword.kwlist,
            "_x",
            "__init__",
            "_missing_",
            "ID",
            "URL",
            "Plan",
            "\ufb01eld",
            "\u2160",
        ],
    ),
    st.sampled_from(_FIELD_TYPES),
    min_size=1,
    max_size=4,
)
_classes = _names(
    r"\A[A-Z][A-Za-z0-9]{0,7}\Z",
    ["Struct", "Enum", "UUID", "Decimal", "ServiceMap", "EventRoute", "ChannelSpec", "Create"]
    + ["ACreate", "Field", "Any", "Self", "T", "Names", "\u00c4pfel", "\u039b", "Doit", "E"],
    [*[n for n in _BUILTINS if n[:1].isupper()][::5], "Literal", "Protocol", "Mapping", "Route"]
    + ["Delivery", "Dispatcher", "DistributedBus", "SyncDistributedBus", "Transport", "SERVICE"]
    + ["SyncTransport", "PublishResult", "SERVICE_MAP", "\uff24oit", "lower", "None", "AHandlers"]
    + ["APublisher", "BSyncPublisher", "\u01c5x"],
)
_services = _names(
    r"\A[a-z][a-z0-9_]{0,5}\Z",
    ["a", "b", "a_b", "ab", "list", "msgspec", "toolkit", "enum", "typing", "generated", "uuid"],
    ["service_map", "class", "A", "_a", "\u00e4", "\ufb01"],
)
_keys = _names(
    r"\A[A-Za-z0-9_-]{1,4}(\.[A-Za-z0-9_-]{1,4}){0,2}\Z",
    ["a.do", "x", "A.B", "_", "-", "a-b", "class.def", "bus", "self"],
    ["a..b", "\u00fc.x", "a.*", ""],
)
_enum_values = _names(
    r"\A[a-z][a-z0-9_ -]{0,6}\Z",
    [
        "_missing_",
        "__init__",
        "_order_",
        "mro",
        "name",
        "value",
        "1st",
        "a b",
        "",
        "\u00df",
        "\uff26x",
    ],
    # punctuation only: both give the member V_
    [" ", "-", "\u00e9", "\u00c9"],
)


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def _field_lines(fields: dict[str, tuple[str, Any]]) -> str:
    lines = []
    for name, (type_, default) in fields.items():
        spec: dict[str, Any] = {"type": type_}
        if default is not None:
            spec["default"] = default
        lines.append(f"fields.{_toml(name)} = {_toml(spec)}")
    return "\n".join(lines) + "\n"


@st.composite
def _systems(draw: st.DrawFn) -> dict[str, str]:
    """Two services: one owns a command and an event; the other reads the event and sends the command."""
    owner, reader = draw(_services), draw(_services)
    command, event = draw(_keys), draw(_keys)
    fields = draw(_fields)
    view = {n: t for n, t in fields.items() if draw(st.booleans())}
    values = draw(st.lists(_enum_values, min_size=1, max_size=3, unique=True))
    enum = f'[types.E]\nkind = "enum"\nvalues = {_toml(values)}\n'
    owner_toml = (
        f"[service]\nname = {_toml(owner)}\n\n"
        f'[channels.owner_commands]\nkind = "queue"\ncommands = true\n\n{enum}\n'
        f"[commands.{_toml(command)}]\nclass = {_toml(draw(_classes))}\n{_field_lines(fields)}\n"
        f"[events.{_toml(event)}]\nclass = {_toml(draw(_classes))}\n{_field_lines(fields)}"
    )
    reader_toml = (
        f"[service]\nname = {_toml(reader)}\n\n{enum}\n"
        f'[channels.reader_events]\nkind = "queue"\nsubscribe = [{_toml(event)}]\n\n'
        f"[subscribes.{_toml(event)}]\nclass = {_toml(draw(_classes))}\n"
        + (_field_lines(view) if view else "")
        + f"\n[sends.{_toml(command)}]\nservice = {_toml(owner)}\n"
    )
    return {"owner.toml": owner_toml, "reader.toml": reader_toml}


_counter = itertools.count()


class _Handlers:
    def __getattr__(self, name: str) -> Any:
        return lambda message, meta: None


def _check_generated(files: dict[str, str], root: Path) -> None:
    package = f"names_property_{next(_counter)}"
    write_files(files, root / package)
    sys.path.insert(0, str(root))
    try:
        service_map = importlib.import_module(package).SERVICE_MAP
        services = sorted({path.split("/")[0] for path in files if "/" in path})
        transport = InMemoryTransport()
        for service in services:
            module = importlib.import_module(f"{package}.{service}")
            if hasattr(module, "bind"):
                module.bind(_Handlers())
            messages = f"{package}.{service}.messages"
            if f"{service}/messages.py" in files:
                for name in importlib.import_module(messages).__all__:
                    cls = getattr(module, name)
                    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
                        value = msgspec.convert(sample(cls), cls)
                        assert msgspec.json.decode(msgspec.json.encode(value), type=cls) == value
            publisher_class = getattr(module, f"{_pascal(service)}SyncPublisher", None)
            if publisher_class is not None:
                publisher = publisher_class(transport)
                for method_name, method in vars(publisher_class).items():
                    if method_name.startswith(("send_", "publish_")):
                        hints = method.__annotations__
                        cls = hints.get("command") or hints["event"]
                        method(publisher, msgspec.convert(sample(cls), cls))
        assert service_map.services
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


def _pascal(service: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in service.split("_") if part)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_systems())
def test_names_are_refused_or_generate_working_code(system: dict[str, str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="names_property_"))
    try:
        schemas = root / "schemas"
        schemas.mkdir()
        for name, text in system.items():
            (schemas / name).write_text(text, encoding="utf-8")
        try:
            files = generate_files(schemas)
        except SchemaErrors as exc:
            event("refused")
            assert exc.diagnostics
            assert all(d.file.endswith(".toml") and d.message for d in exc.diagnostics)
            return
        event("generated")
        _check_generated(files, root)
    finally:
        shutil.rmtree(root)
