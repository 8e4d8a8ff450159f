"""Names: which schema names are valid, and the Python names the generated code derives from them.

The generated package is Python, so a class, field, enum member or method
name must be an identifier that is no keyword, and a class must not shadow a
builtin or a name the generated modules bind themselves. Everything here is
decided once, on the model; the back-ends print the names they are given.
"""

from __future__ import annotations

import builtins
import keyword
import re

from codegen.build.state import ServiceState
from codegen.errors import format_key_path
from codegen.model import ForeignClass

__all__ = [
    "CHANNEL_NAME",
    "KEY_PATTERN",
    "RESERVED_CLASS_NAMES",
    "ROUTING_KEY",
    "SERVICE_NAME",
    "check_method_names",
    "check_routing_key",
    "claim_class",
    "enum_member",
    "identifier_problem",
    "local_name",
    "method_name",
    "snake_to_pascal",
]

ROUTING_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")

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
        "HandlerResult",
        "PublishResult",
        "Route",
        "SERVICE",
        "SERVICE_MAP",
        "bind",
    }
)
RESERVED_CLASS_NAMES = frozenset(dir(builtins)) | _GENERATED_NAMES


def identifier_problem(name: str, what: str) -> str | None:
    """Why ``name`` cannot be a Python identifier here, or None when it can."""
    if not name.isidentifier():
        return f"{what} {name!r} is not a valid Python identifier"
    if keyword.iskeyword(name):
        return f"{what} {name!r} is a Python keyword"
    return None


def snake_to_pascal(name: str) -> str:
    return "".join(
        part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part
    )


def enum_member(value: str) -> str:
    """The member name of an enum value: ``high-ish`` -> ``HIGH_ISH``, ``9lives`` -> ``V_9LIVES``."""
    member = re.sub(r"\W", "_", value).upper() or "EMPTY"
    return "V_" + member if member[0].isdigit() else member


def method_name(prefix: str, key: str) -> str:
    """A handler or publisher method for a routing key: ``on``, ``user.registered`` -> ``on_user_registered``."""
    return prefix + "_" + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").lower()


def local_name(svc: ServiceState, foreign: ForeignClass) -> str:
    """How ``svc`` names another service's class: as it is, or prefixed when the name is taken."""
    if foreign.class_name in svc.class_names:
        return snake_to_pascal(foreign.service) + foreign.class_name
    return foreign.class_name


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
