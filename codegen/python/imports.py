"""The import lines of each generated module, computed from the model before rendering.

Laid out as ``ruff format`` and ruff's isort rules lay them out: sections
(future, standard library, third party, relative) split by one blank line,
plain ``import`` lines before ``from`` lines, names in isort's order, a long
``from`` import wrapped one name a line; so that the output needs no
formatter (tests/test_generated.py runs ruff on every golden output).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from codegen.model import ServiceModel, SystemModel
from codegen.python.fields import builtins_used, modules_used, uses_literal
from codegen.python.pytext import LINE_LENGTH, import_order, module_order

__all__ = [
    "LINE_LENGTH",
    "handler_imports",
    "import_line",
    "message_imports",
    "publisher_imports",
    "service_map_imports",
]


def import_line(module: str, names: list[str] | tuple[str, ...], indent: str = "    ") -> str:
    """``from module import a, b``, wrapped one name a line when too long."""
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= LINE_LENGTH:
        return line
    inner = "".join(f"{indent}{n},\n" for n in names)
    return f"from {module} import (\n{inner})"


def _from(module: str, names: Iterable[str]) -> str:
    """:func:`import_line` with the names in isort's order."""
    return import_line(module, import_order(list(names)))


def _sections(*sections: list[str]) -> tuple[str, ...]:
    """The non-empty sections, one blank line between them."""
    lines: list[str] = []
    for section in sections:
        if section:
            lines.extend([""] * bool(lines) + section)
    return tuple(lines)


def _import(module: str, spelled: Mapping[str, str]) -> str:
    # builtins is imported only to spell the builtins a field shadows.
    alias = "_builtins" if module == "builtins" else spelled.get(module)
    return f"import {module} as {alias}" if alias else f"import {module}"


def message_imports(service: ServiceModel, spelled: Mapping[str, str]) -> tuple[str, ...]:
    """``messages.py``: postponed annotations, the standard modules its classes use, msgspec.

    ``spelled``: the private aliases of names a field shadows (see
    :func:`codegen.python.fields.spelling`).
    """
    modules: set[str] = {"enum"} if service.enums else set()
    literal = False
    shadowed_builtins = False
    for struct in service.structs:
        for field in struct.fields:
            modules |= modules_used(field.type)
            literal = literal or uses_literal(field.type)
            shadowed_builtins = shadowed_builtins or bool(
                builtins_used(field.type) & spelled.keys()
            )
    if shadowed_builtins:
        modules.add("builtins")
    return _sections(
        # Postponed annotations let named structs refer to themselves and to later classes.
        ["from __future__ import annotations"],
        [_import(m, spelled) for m in sorted(modules)]
        + (["from typing import Literal"] if literal else []),
        [_import("msgspec", spelled)] if service.structs else [],
    )


def publisher_imports(service: ServiceModel) -> tuple[str, ...]:
    """``publisher.py``: the bus types, the service map and every class a method takes."""
    toolkit_names = [
        "Delivery",
        "DistributedBus",
        "SyncDistributedBus",
        "SyncTransport",
        "Transport",
    ]
    if any(p.kind == "event" for p in service.publishers):
        toolkit_names.append("PublishResult")
    relative: dict[str, set[str]] = {"..service_map": {"SERVICE_MAP"}}
    own = {e.class_name for e in service.enums} | {s.class_name for s in service.structs}
    for p in service.publishers:
        if p.foreign is not None:
            name, alias = p.foreign.class_name, p.class_name
            relative.setdefault(f"..{p.foreign.service}.messages", set()).add(
                name if name == alias else f"{name} as {alias}"
            )
        elif p.class_name in own:
            relative.setdefault(".messages", set()).add(p.class_name)
    return _sections(
        ["from collections.abc import Mapping", "from datetime import datetime, timedelta"],
        [
            _from("toolkit", toolkit_names),
            "from toolkit.bus import publisher_bus, sync_publisher_bus",
        ],
        [_from(module, relative[module]) for module in module_order(list(relative))],
    )


def handler_imports(service: ServiceModel) -> tuple[str, ...]:
    """``handlers.py``: Protocol, the toolkit's dispatch types, the service map (whose
    subscriptions decide what each channel delivers) and the classes handled."""
    return _sections(
        ["from typing import Protocol"],
        [_from("toolkit", ["Delivery", "Dispatcher", "HandlerResult", "Route"])],
        [
            "from ..service_map import SERVICE_MAP",
            _from(".messages", {h.class_name for h in service.handlers}),
        ],
    )


def service_map_imports(system: SystemModel) -> tuple[str, ...]:
    """``service_map.py``: the toolkit types its data is made of, and no other."""
    names = ["ServiceMap"]
    if system.channels:
        names.append("ChannelSpec")
    if system.event_routes:
        names.append("EventRoute")
    if system.services:
        names.append("ServiceSpec")
    return (_from("toolkit", names),)
