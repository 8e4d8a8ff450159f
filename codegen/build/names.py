"""Names: which schema names are valid, and the Python names the generated code derives from them.

The generated package is Python, so a class, field, enum member or method
name must be an identifier that is no keyword, and a class must not shadow a
builtin or a name the generated modules bind themselves. Python reads every
identifier in NFKC form (``ﬁeld`` is ``field``), so a name
that normalization changes would silently merge with another: refused. Field
names that shadow a module or builtin (``uuid``, ``int``) are fine: the
Python back-end spells those through private aliases. Everything here is
decided once, on the model; the back-ends print the names they are given.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

from codegen.build.state import ServiceState
from codegen.errors import format_key_path
from codegen.model import ForeignClass

__all__ = [
    "CHANNEL_NAME",
    "GENERATED_MODULES",
    "KEY_PATTERN",
    "METADATA_KEY",
    "RESERVED_CLASS_NAMES",
    "ROUTING_KEY",
    "SERVICE_NAME",
    "check_method_names",
    "check_routing_key",
    "claim_class",
    "enum_member",
    "field_name_problem",
    "generated_classes",
    "identifier_problem",
    "local_name",
    "method_name",
    "service_name_problem",
    "snake_to_pascal",
]

ROUTING_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
METADATA_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

# Names the generated modules import or define themselves.
_GENERATED_NAMES = frozenset(
    {
        "msgspec",
        "datetime",
        "decimal",
        "uuid",
        "enum",
        "typing",
        "Literal",
        "Protocol",
        "Mapping",
        "Delivery",
        "Dispatcher",
        "DistributedBus",
        "SyncDistributedBus",
        "Transport",
        "SyncTransport",
        "HandlerResult",
        "PublishResult",
        "Route",
        "SERVICE",
        "SERVICE_MAP",
        "bind",
    }
)
RESERVED_CLASS_NAMES = frozenset(dir(builtins)) | _GENERATED_NAMES
#: Modules of the generated package beside the services' packages: no service may take their name.
GENERATED_MODULES = frozenset({"service_map"})


def identifier_problem(name: str, what: str) -> str | None:
    """Why ``name`` cannot be a Python identifier here, or None when it can."""
    if not name.isidentifier():
        return f"{what} {name!r} is not a valid Python identifier"
    if keyword.iskeyword(name):
        return f"{what} {name!r} is a Python keyword"
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        return (
            f"{what} {name!r} is read by Python as {normal!r} (NFKC), so it would merge "
            f"with any name spelled {normal!r}; write {normal!r}"
        )
    return None


def field_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a field, or None when it can.

    A field binds its name in the class body: one starting with ``_`` could
    clash with msgspec's and Python's own attributes, one starting with an
    upper-case letter with a class of the module (class names do). Field names
    that shadow a module or builtin (``uuid``, ``int``, ``type``) are fine.
    """
    problem = identifier_problem(name, "field name")
    if problem is None and name.startswith("_"):
        problem = f"field name {name!r} starts with an underscore"
    if problem is None and name[:1].isupper():
        problem = (
            f"field name {name!r} starts with an upper-case letter, as class names do, "
            "so it could shadow one"
        )
    return problem


def service_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a service (and its package), or None when it can."""
    if not SERVICE_NAME.match(name) or identifier_problem(name, "service name"):
        return f"service name {name!r} must be lower_snake_case (it names a Python package)"
    if name in GENERATED_MODULES:
        return f"service name {name!r} is taken by the generated module {name}.py"
    return None


def generated_classes(service: str) -> tuple[str, ...]:
    """The classes generated for ``service`` itself: its Protocol and publishers."""
    prefix = snake_to_pascal(service)
    return (f"{prefix}Handlers", f"{prefix}Publisher", f"{prefix}SyncPublisher")


def snake_to_pascal(name: str) -> str:
    return "".join(
        part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part
    )


def enum_member(value: str) -> str:
    """The member name of an enum value: ``high-ish`` -> ``HIGH_ISH``, ``9lives`` -> ``V_9LIVES``.

    In NFKC form (as Python reads it), and never starting with ``_``: enum
    reserves ``_sunder_`` names and drops ``__dunder__`` ones (``_missing_``
    -> ``V_MISSING_``).
    """
    normal = unicodedata.normalize("NFKC", value)
    member = unicodedata.normalize("NFKC", re.sub(r"\W", "_", normal).upper()) or "EMPTY"
    if member[0].isdigit():
        return "V_" + member
    return "V" + member if member[0] == "_" else member


def method_name(prefix: str, key: str) -> str:
    """A handler or publisher method for a routing key: ``on``, ``user.registered`` -> ``on_user_registered``."""
    return prefix + "_" + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").lower()


def local_name(svc: ServiceState, foreign: ForeignClass) -> str | None:
    """How ``svc`` names another service's class: as it is, else prefixed with its service.

    The name is claimed in ``svc``; None when both are taken (by its own
    classes, a class generated for it, or another service's class it imports).
    """
    for name in (foreign.class_name, snake_to_pascal(foreign.service) + foreign.class_name):
        taken = (
            name in svc.class_names
            or name in RESERVED_CLASS_NAMES
            or name in generated_classes(svc.name)
            or svc.foreign_names.get(name, foreign) != foreign
        )
        if not taken:
            svc.foreign_names[name] = foreign
            return name
    return None


def check_routing_key(svc: ServiceState, path: tuple[str, ...], key: str, hint: str) -> bool:
    """False (and an error at ``path``) when ``key`` is not a valid routing key."""
    if ROUTING_KEY.match(key):
        return True
    svc.file.error(path, f"routing key {key!r} is not valid", hint)
    return False


def claim_class(svc: ServiceState, name: str, path: tuple[str, ...]) -> bool:
    """Reserve a class name in ``svc``; False (and an error at ``path``) when it cannot be used."""
    problem = identifier_problem(name, "class name")
    if problem is None and name in RESERVED_CLASS_NAMES:
        problem = f"class name {name!r} clashes with a builtin or a name the generated code uses"
    if problem is None and name in generated_classes(svc.name):
        problem = f"class name {name!r} is the name of a class generated for {svc.name}"
    if problem is None and not name[:1].isupper():
        problem = f"class name {name!r} should start with an upper-case letter"
    if problem:
        svc.file.error(path, problem, "use a PascalCase name such as 'TicketCreated'")
        return False
    # The first declaration in the file keeps the name, whichever the build meets first.
    first = svc.first_class.get(name, path)
    if name in svc.class_names or first != path:
        other = svc.class_names.get(name, first)
        svc.file.error(
            path,
            f"class name {name!r} is already used at {format_key_path(other)}"
            f" (line {svc.file.place(*other).line})",
            "class names must be unique within a service; rename one of them",
        )
        return False
    svc.class_names[name] = path
    return True


def check_method_names(svc: ServiceState) -> None:
    """Two routing keys must not give the same handler or publisher method."""
    for kind, methods in (("handler", svc.handlers), ("publisher", svc.publishers)):
        seen: dict[str, str] = {}
        for method in methods:
            name = method.method_name
            if name in seen:
                svc.file.error(
                    (),
                    f"routing keys {seen[name]!r} and {method.routing_key!r} both give {kind} method {name}",
                    "rename one of the keys",
                )
            seen[name] = method.routing_key
