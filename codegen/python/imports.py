"""The import lines of each generated module, computed from the model before rendering.

Laid out as ``ruff format`` and isort lay them out (sections split by a
blank line, a long ``from`` import wrapped one name a line), so that the
output needs no formatter.
"""

from __future__ import annotations

from codegen.model import ServiceModel
from codegen.python.fields import modules_used, uses_literal

__all__ = [
    "LINE_LENGTH",
    "handler_imports",
    "import_line",
    "message_imports",
    "publisher_imports",
]

#: Line length of the generated code (ruff's and black's default).
LINE_LENGTH = 88


def import_line(module: str, names: list[str] | tuple[str, ...], indent: str = "    ") -> str:
    """``from module import a, b``, wrapped one name a line when too long."""
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= LINE_LENGTH:
        return line
    inner = "".join(f"{indent}{n},\n" for n in names)
    return f"from {module} import (\n{inner})"


def message_imports(service: ServiceModel) -> tuple[str, ...]:
    """``messages.py``: postponed annotations, the standard modules its fields use, msgspec."""
    # Postponed annotations let named structs refer to themselves and to later classes.
    lines = ["from __future__ import annotations", ""]
    modules: set[str] = {"enum"} if service.enums else set()
    literal = False
    for struct in service.structs:
        for field in struct.fields:
            modules |= modules_used(field.type)
            literal = literal or uses_literal(field.type)
    lines.extend(f"import {m}" for m in sorted(modules))
    if literal:
        lines.append("from typing import Literal")
    lines += ["", "import msgspec"]
    return tuple(lines)


def publisher_imports(service: ServiceModel) -> tuple[str, ...]:
    """``publisher.py``: the toolkit's bus types and every class a method takes."""
    toolkit_names = ["DistributedBus", "SyncDistributedBus"]
    lines: list[str] = []
    if service.publishers:
        lines += ["from collections.abc import Mapping", ""]
        toolkit_names.append("Delivery")
        if any(p.kind == "event" for p in service.publishers):
            toolkit_names.append("PublishResult")
    lines += [f"from toolkit import {', '.join(sorted(toolkit_names))}", ""]
    foreign: dict[str, set[tuple[str, str]]] = {}
    for p in service.publishers:
        if p.foreign is not None:
            foreign.setdefault(p.foreign.service, set()).add((p.foreign.class_name, p.class_name))
    for owner in sorted(foreign):
        parts = [n if n == alias else f"{n} as {alias}" for n, alias in sorted(foreign[owner])]
        lines.append(import_line(f"..{owner}.messages", parts))
    own = {e.class_name for e in service.enums} | {s.class_name for s in service.structs}
    local = sorted({p.class_name for p in service.publishers if p.class_name in own})
    if local:
        lines.append(import_line(".messages", local))
    if not local and not foreign:
        lines.pop()
    return tuple(lines)


def handler_imports(service: ServiceModel) -> tuple[str, ...]:
    """``handlers.py``: Protocol, the toolkit's dispatch types and the classes handled."""
    names = sorted({h.class_name for h in service.handlers})
    if not names:
        return ("from typing import Protocol", "", "from toolkit import Dispatcher")
    return (
        "from typing import Protocol",
        "",
        "from toolkit import Delivery, Dispatcher, HandlerResult, Route",
        "",
        import_line(".messages", names),
    )
