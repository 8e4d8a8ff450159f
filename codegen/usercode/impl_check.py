"""Implementation drift: do the users' handler classes still match the schemas?

The users' implementation modules are read *statically* with libcst — never
imported — so a module with side effects at import time, or one that does not
import at all yet, can still be checked. Three kinds of problem are reported,
each with file and line:

``missing``
    the schema says the service consumes a routing key, the class has no
    ``on_<key>`` method for it (the line is the class's);
``orphan``
    the class has a public ``on_*`` method for a key the service no longer
    consumes (the line is the method's);
``signature``
    the method cannot be called as ``handler(message, meta)`` the way the
    generated Protocol promises: wrong number of parameters (too few, or
    extra ones without defaults), or annotations naming another class than the key's view class or ``Delivery`` (``object``,
    ``Any`` and ``msgspec.Struct`` are accepted too). Parameter names are not
    compared: the dispatcher passes both arguments by position, and mypy does
    not compare them when it matches a Protocol. Methods assigned in the class
    body (``on_x = handle_x``) and the return annotation are not checked.

Which class implements which service is configured in pyproject.toml::

    [tool.toolkit]
    implementations = { ticket_service = "app/ticket_handlers.py:TicketHandlers" }

The value is a file path relative to the project root (the folder holding
pyproject.toml), a colon, and the class name. A dotted module name
(``app.ticket_handlers:TicketHandlers``) is accepted too; it is looked up as a
file under the project root and under ``src/``, still without importing it.
Without ``:ClassName`` the class is the one ``toolkit scaffold`` names by
default (``ticket_service`` -> ``TicketHandlers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import libcst as cst
import msgspec

from codegen.build import load_system
from codegen.errors import locate
from codegen.model import HandlerMethod, ServiceModel, SystemModel
from codegen.usercode._source import Method, ParsedModule, default_class_name, dotted, syntax_error
from toolkit.paths import relative_path

if TYPE_CHECKING:
    from toolkit.config import Config

__all__ = [
    "ImplConfigError",
    "ImplProblem",
    "ImplementationSpec",
    "ProblemKind",
    "check_implementation",
    "check_implementations",
    "check_source",
    "default_class_name",
    "parse_spec",
]

ProblemKind = Literal["missing", "orphan", "signature"]

#: The Protocol's parameter names, after ``self``.
_PARAMS = ("message", "meta")
_DELIVERY = "Delivery"
#: Supertypes a parameter may be annotated with instead (parameters are contravariant).
_ANY_TYPES = ("object", "Any", "Struct")


class ImplProblem(msgspec.Struct, frozen=True, order=True):
    """One way an implementation module has drifted from the schemas."""

    file: str
    line: int
    service: str
    kind: ProblemKind
    message: str

    def render(self) -> str:
        return f"{self.file}:{self.line}: {self.service}: {self.kind}: {self.message}"

    def __str__(self) -> str:
        return self.render()


class ImplConfigError(ValueError):
    """The ``implementations`` setting or an implementation file cannot be used.

    Bad input rather than drift (``toolkit check`` exits 2). The message
    names the file and line: pyproject.toml for a bad setting, the module for
    a syntax error or a class that is not there.
    """


class ImplementationSpec(msgspec.Struct, frozen=True):
    """Where one service's handler class lives."""

    service: str
    path: Path
    class_name: str


# -- configuration -------------------------------------------------------------------


def _setting_place(config: Config, service: str) -> str:
    if config.pyproject is None:
        return f"[tool.toolkit] implementations.{service}"
    try:
        text = config.pyproject.read_text(encoding="utf-8")
    except OSError:
        text = ""
    line = locate(text, ("tool", "toolkit", "implementations", service))
    where = relative_path(config.pyproject) + (f":{line}" if line else "")
    return f"{where}: tool.toolkit.implementations.{service}"


def parse_spec(
    service: str, value: str, root: Path, *, where: str | None = None
) -> ImplementationSpec:
    """Turn ``"app/handlers.py:TicketHandlers"`` (or ``"app.handlers:TicketHandlers"``) into a spec.

    ``where`` prefixes error messages (the setting's file and line).
    """
    prefix = f"{where}: " if where else ""
    target, sep, class_name = value.strip().rpartition(":")
    if not sep:
        target, class_name = value.strip(), default_class_name(service)
    if not target or not class_name.isidentifier():
        raise ImplConfigError(
            f"{prefix}error: {value!r} is not 'path/to/module.py:ClassName'"
            f'\n    fix: write e.g. {service} = "app/{service}_handlers.py:{default_class_name(service)}"'
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        return ImplementationSpec(service, root / target, class_name)
    if not all(part.isidentifier() for part in target.split(".")):
        raise ImplConfigError(
            f"{prefix}error: {target!r} is neither a .py file nor a dotted module name"
        )
    tried: list[Path] = []
    for base in (root, root / "src"):
        for candidate in (
            base.joinpath(*target.split(".")).with_suffix(".py"),
            base.joinpath(*target.split("."), "__init__.py"),
        ):
            if candidate.is_file():
                return ImplementationSpec(service, candidate, class_name)
            tried.append(candidate)
    raise ImplConfigError(
        f"{prefix}error: module {target!r} not found (looked for "
        + ", ".join(relative_path(p) for p in tried)
        + ')\n    fix: give the file path instead, e.g. "app/handlers.py:'
        + class_name
        + '"'
    )


# -- reading a module ----------------------------------------------------------------


# -- the checks ----------------------------------------------------------------------


def _signature_problems(
    parsed: ParsedModule, method: Method, handler: HandlerMethod
) -> Iterator[tuple[int, str]]:
    node = method.node
    if node is None:
        return  # ``on_x = something``: nothing to read statically
    where = f"{method.owner}.{method.name} ({handler.kind} {handler.routing_key!r})"
    call = f"{method.name}(message: {handler.class_name}, meta: {_DELIVERY})"
    params = node.params
    decorators = {dotted(d.decorator) for d in node.decorators}
    positional = [*params.posonly_params, *params.params]
    if "staticmethod" not in decorators:
        if not positional:
            if not isinstance(params.star_arg, cst.Param):
                yield parsed.line(node.name), f"{where} takes no self parameter; expected {call}"
            return
        positional = positional[1:]
    takes_star = isinstance(params.star_arg, cst.Param)
    if len(positional) < len(_PARAMS) and not takes_star:
        names = ", ".join(p.name.value for p in positional) or "nothing"
        yield (
            parsed.line(node.name),
            f"{where} takes {len(positional)} argument{'' if len(positional) == 1 else 's'} "
            f"({names}), "
            f"but the dispatcher passes 2; expected {call}",
        )
    for extra in positional[len(_PARAMS) :]:
        if extra.default is None:
            yield (
                parsed.line(extra),
                f"{where} has extra required parameter {extra.name.value!r}; "
                f"the dispatcher passes only (message, meta)",
            )
    for kwonly in params.kwonly_params:
        if kwonly.default is None:
            yield (
                parsed.line(kwonly),
                f"{where} has required keyword-only parameter {kwonly.name.value!r}; "
                f"the dispatcher passes only (message, meta)",
            )
    expected_types = (handler.class_name, _DELIVERY)
    # Names are not compared: the dispatcher passes both arguments by position,
    # and mypy does not compare parameter names when it matches a Protocol.
    for param, want_type in zip(positional, expected_types, strict=False):
        if param.annotation is None:
            continue
        annotation = param.annotation.annotation
        if parsed.resolve(annotation) not in (want_type, *_ANY_TYPES):
            meaning = (
                f"{handler.routing_key!r} delivers {handler.class_name}"
                if want_type == handler.class_name
                else f"the delivery's metadata is a {_DELIVERY}"
            )
            yield (
                parsed.line(annotation),
                f"{where}: {param.name.value} is annotated {parsed.code(annotation)}, "
                f"but {meaning}",
            )


def _parse(source: str, label: str) -> ParsedModule:
    try:
        return ParsedModule(cst.parse_module(source))
    except cst.ParserSyntaxError as exc:
        raise ImplConfigError(f"{label}:{syntax_error(exc)}") from None


def check_source(
    service: ServiceModel, source: str, class_name: str, label: str
) -> list[ImplProblem]:
    """Check source text of an implementation module; ``label`` names it in problems."""
    parsed = _parse(source, label)
    if class_name not in parsed.classes:
        known = ", ".join(sorted(parsed.classes)) or "none"
        raise ImplConfigError(
            f"{label}: error: no top-level class {class_name} "
            f"(classes in the module: {known})"
            f"\n    fix: run `toolkit scaffold {service.name} --into {label}`, "
            f"or point the setting at the right class"
        )
    class_line = parsed.line(parsed.classes[class_name].name)
    methods = parsed.methods(class_name)
    expected = {h.method_name: h for h in service.handlers}
    problems: list[ImplProblem] = []

    def add(line: int, kind: ProblemKind, message: str) -> None:
        problems.append(ImplProblem(label, line, service.name, kind, message))

    for handler in service.handlers:
        method = methods.get(handler.method_name)
        if method is None:
            add(
                class_line,
                "missing",
                f"{class_name} has no {handler.method_name}(self, message: "
                f"{handler.class_name}, meta: {_DELIVERY}) for {handler.kind} "
                f"{handler.routing_key!r}; `toolkit scaffold {service.name} --into {label}` "
                "adds it",
            )
            continue
        for line, message in _signature_problems(parsed, method, handler):
            add(line, "signature", message)
    consumed = ", ".join(h.routing_key for h in service.handlers) or "no keys"
    for name, method in sorted(methods.items()):
        if name.startswith("on_") and name not in expected:
            add(
                method.line,
                "orphan",
                f"{method.owner}.{name} handles no routing key {service.name} consumes "
                f"({consumed}); remove it, or declare its key in {service.source_file}",
            )
    return sorted(problems)


def check_implementation(service: ServiceModel, spec: ImplementationSpec) -> list[ImplProblem]:
    """Check one implementation file (read, never imported)."""
    label = relative_path(spec.path)
    try:
        source = spec.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImplConfigError(
            f"{label}: error: cannot read the implementation of {service.name}: {reason}"
        ) from None
    return check_source(service, source, spec.class_name, label)


def check_implementations(config: Config, system: SystemModel | None = None) -> list[ImplProblem]:
    """Check every implementation ``[tool.toolkit] implementations`` configures.

    Returns the problems sorted by file and line (empty when all match, or
    when nothing is configured). Raises :class:`ImplConfigError` for a bad
    setting, an unreadable or unparsable module, or a class that is not there,
    and :class:`~codegen.errors.SchemaErrors` for bad schemas. Pass ``system``
    when the caller has already loaded the schemas.
    """
    if not config.implementations:
        return []
    if system is None:
        system = load_system(config.schemas, config.package)
    services = {s.name: s for s in system.services}
    problems: list[ImplProblem] = []
    errors: list[str] = []
    for name, value in sorted(config.implementations.items()):
        where = _setting_place(config, name)
        try:
            service = services.get(name)
            if service is None:
                raise ImplConfigError(
                    f"{where}: error: no service {name!r} in {relative_path(config.schemas)}"
                    f"\n    fix: known services: {', '.join(sorted(services))}"
                )
            spec = parse_spec(name, value, config.root, where=where)
            problems.extend(check_implementation(service, spec))
        except ImplConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ImplConfigError("\n".join(errors))
    return sorted(problems)
