"""Render the model into the generated package: ``{relative path: Python source}``.

Each template prints a view computed beforehand (:mod:`codegen.python.views`);
the result is laid out (blank runs collapsed, one final newline) and parsed
before it is returned. An unparsable result is a bug in a template and is
raised loudly, never written. Nothing here touches the disk.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jinja2

from codegen.model import ServiceModel, SystemModel
from codegen.python.imports import service_map_imports
from codegen.python.pytext import all_list, comment_text, py_str
from codegen.python.views import service_view

__all__ = ["GeneratorBug", "render_python"]


class GeneratorBug(RuntimeError):
    """The generator produced invalid Python: a bug in toolkit, not in the schemas."""


def _pytuple(value: tuple[str, ...] | None) -> str:
    if value is None:
        return "None"
    if len(value) == 1:
        return f"({py_str(value[0])},)"
    return "(" + ", ".join(py_str(v) for v in value) + ")"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pystr"] = py_str
    env.filters["pytuple"] = _pytuple
    env.filters["comment"] = comment_text
    env.filters["all_list"] = all_list
    return env


_ENV: jinja2.Environment | None = None


def _layout(text: str) -> str:
    """Collapse the blank lines an empty import block may leave; end with one newline."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() == "" and len(out) >= 2 and out[-1] == "" and out[-2] == "":
            continue
        out.append(line.rstrip())
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _render(template: str, **context: object) -> str:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _layout(_ENV.get_template(template).render(**context))


def _service_files(service: ServiceModel) -> dict[str, str]:
    """The service's package: a module for what it has, none for what it has not.

    No messages.py without classes, no handlers.py (Protocol, bind) when it
    consumes nothing, no publisher.py when it sends and publishes nothing.
    """
    base = service.name
    view = service_view(service)
    files = {f"{base}/__init__.py": _render("service_init.py.j2", service=view)}
    if view.message_names:
        files[f"{base}/messages.py"] = _render("messages.py.j2", service=view)
    if view.handlers:
        files[f"{base}/handlers.py"] = _render("handlers.py.j2", service=view)
    if view.publishers:
        files[f"{base}/publisher.py"] = _render("publisher.py.j2", service=view)
    return files


def render_python(system: SystemModel) -> dict[str, str]:
    """Every generated Python file, keyed by its path relative to the output folder."""
    files: dict[str, str] = {
        "__init__.py": _render("package_init.py.j2", system=system),
        "service_map.py": _render(
            "service_map.py.j2", system=system, imports=service_map_imports(system)
        ),
    }
    for service in system.services:
        files.update(_service_files(service))
    for path, text in files.items():
        try:
            ast.parse(text, filename=path)
        except SyntaxError as exc:
            raise GeneratorBug(
                f"generated {path} does not parse ({exc}); please report this"
            ) from exc
    return files
