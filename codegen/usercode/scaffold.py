"""Handler scaffolding: write (or complete) a user's module implementing a handler Protocol.

``scaffold`` works on text and returns text; only the CLI touches the disk.

* No module yet: a new one with a docstring, the imports, and a class with
  one method per routing key the service consumes, each with the Protocol's
  signature and a ``raise NotImplementedError`` body under a TODO comment.
* A module already there: it is parsed with libcst and only what is missing
  is added — handler methods (at the end of the class) and the imports they
  need (merged into an existing ``from <package>.<service> import ...`` or
  ``from toolkit import ...`` when there is one). Existing bodies, comments
  and formatting are left byte for byte; a module with nothing missing comes
  back identical. Methods whose keys the service no longer consumes are
  reported, never deleted.

Methods are scaffolded as ``def on_x(self, message: View, meta: Delivery) -> None``:
``None`` is one of the Protocol's ``HandlerResult`` values, and a method may
be turned into ``async def`` without touching the signature.
"""

from __future__ import annotations

import libcst as cst
import msgspec

from codegen.model import HandlerMethod, ServiceModel, SystemModel
from codegen.python import pytext
from codegen.python.imports import LINE_LENGTH, import_line
from codegen.python.views import handler_doc
from codegen.usercode._imports import add_import, blank_lines, bound_names
from codegen.usercode._source import ParsedModule, default_class_name, syntax_error

__all__ = [
    "AddedMethod",
    "ScaffoldError",
    "ScaffoldResult",
    "default_class_name",
    "scaffold",
]

_TOOLKIT = "toolkit"


class ScaffoldError(ValueError):
    """The module cannot be completed (unknown service, syntax error, name taken)."""


class AddedMethod(msgspec.Struct, frozen=True):
    name: str
    routing_key: str
    line: int


class ScaffoldResult(msgspec.Struct, frozen=True):
    """The new text of the module and what changed."""

    text: str
    #: the text before, None when there was no module
    original: str | None
    class_name: str
    created_class: bool
    added_methods: tuple[AddedMethod, ...]
    #: import lines added, e.g. ``from generated.ticket_service import NewCustomer``
    added_imports: tuple[str, ...]
    #: ``on_*`` methods for keys the service no longer consumes: (name, line)
    orphans: tuple[tuple[str, int], ...]

    @property
    def changed(self) -> bool:
        return self.text != self.original


def scaffold(
    system: SystemModel,
    service_name: str,
    existing: str | None,
    *,
    class_name: str | None = None,
    label: str = "<module>",
) -> ScaffoldResult:
    """Scaffold ``service_name``'s handler class into ``existing`` (None: a new module).

    ``label`` names the module in error messages. Raises :class:`ScaffoldError`.
    """
    services = {s.name: s for s in system.services}
    service = services.get(service_name)
    if service is None:
        raise ScaffoldError(
            f"no service {service_name!r} in the schemas; known services: "
            + ", ".join(sorted(services))
        )
    if not service.handlers:
        raise ScaffoldError(
            f"{service.name} consumes nothing (it owns no command and subscribes to no "
            "event), so it has no handler Protocol to implement"
        )
    name = class_name or default_class_name(service.name)
    if not name.isidentifier():
        raise ScaffoldError(f"class name {name!r} is not a Python identifier")
    imported = {h.class_name for h in service.handlers} | {"Delivery"}
    if name in imported:
        raise ScaffoldError(
            f"class name {name!r} is also the name of a class its handlers take, which the "
            "module imports; choose another with --class"
        )
    messages_module = f"{system.package}.{service.name}"
    fresh = existing is None or not existing.strip()
    source = _new_module(service, messages_module, name) if fresh else existing
    assert source is not None
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise ScaffoldError(f"{label}:{syntax_error(exc)}") from None
    builder = _Completer(module, service, messages_module, name, label)
    builder.complete()
    text = builder.module.code if builder.touched else source
    _check_parses(text, label)
    parsed = ParsedModule(cst.parse_module(text))
    methods = parsed.methods(name)
    expected = {h.method_name for h in service.handlers}
    added = tuple(
        AddedMethod(h.method_name, h.routing_key, methods[h.method_name].line)
        for h in service.handlers
        if h.method_name in builder.added_methods
    )
    orphans = tuple(
        (m.name, m.line)
        for m in sorted(methods.values(), key=lambda m: m.line)
        if m.name.startswith("on_") and m.name not in expected
    )
    return ScaffoldResult(
        text=text,
        original=None if fresh else existing,
        class_name=name,
        created_class=fresh or builder.created_class,
        added_methods=added if not fresh else (),
        added_imports=tuple(builder.added_imports) if not fresh else (),
        orphans=orphans,
    )


def _check_parses(text: str, label: str) -> None:
    try:
        compile(text, label, "exec", dont_inherit=True)
    except SyntaxError as exc:  # a bug here, not the user's
        raise AssertionError(f"scaffold produced invalid Python for {label}: {exc}") from exc


# -- rendering -----------------------------------------------------------------------


def _new_module(service: ServiceModel, messages_module: str, class_name: str) -> str:
    parts = [
        f'"""Handlers of {service.name}, scaffolded by ``toolkit scaffold``: edit freely.\n'
        "\n"
        f"Run ``toolkit scaffold {service.name}`` again after the schemas change: it adds\n"
        "the handler methods and imports that are missing and changes nothing else.\n"
        '"""\n'
    ]
    if service.handlers:
        names = sorted({h.class_name for h in service.handlers})
        parts.append(f"\nfrom {_TOOLKIT} import Delivery\n")
        parts.append("\n" + import_line(messages_module, names) + "\n")
    parts.append("\n\n" + _class_text(service, messages_module, class_name, "    "))
    return "".join(parts)


def _class_text(service: ServiceModel, messages_module: str, class_name: str, ind: str) -> str:
    protocol = f"{service.class_prefix}Handlers"
    return (
        f"class {class_name}:\n"
        f'{ind}"""Implements ``{protocol}``, the handler Protocol of {service.name}.\n'
        "\n"
        f"{ind}Use it with ``{messages_module}.bind({class_name}())``.\n"
        f'{ind}"""\n'
    )


def _method_text(h: HandlerMethod, service: ServiceModel, ind: str, body_ind: str) -> str:
    """A handler method as a top-level ``def``; ``body_ind`` is its body's final indentation."""
    args = f"self, message: {h.class_name}, meta: Delivery"
    head = f"def {h.method_name}({args}) -> None:"
    if len(body_ind) - len(ind) + len(head) > LINE_LENGTH:
        if len(body_ind) + len(args) <= LINE_LENGTH:
            head = f"def {h.method_name}(\n{ind}{args}\n) -> None:"
        else:
            params = "".join(
                f"{ind}{p},\n" for p in ("self", f"message: {h.class_name}", "meta: Delivery")
            )
            head = f"def {h.method_name}(\n{params}) -> None:"
    lines = [
        head,
        f"{ind}{pytext.docstring(handler_doc(h), body_ind)}",
        # Routing keys hold only letters, digits, '_', '-' and '.': safe in a comment.
        f"{ind}# TODO: handle {h.routing_key}. Return to acknowledge the {h.kind};",
        f"{ind}# raise to have it retried, then dead-lettered.",
    ]
    lines.append(
        f"{ind}raise NotImplementedError({pytext.py_str(f'{service.name}: {h.routing_key}')})"
    )
    return "\n".join(lines) + "\n"


# -- completing a module with libcst -------------------------------------------------


class _Completer:
    """Adds what is missing to one parsed module; records what it added."""

    def __init__(
        self,
        module: cst.Module,
        service: ServiceModel,
        messages_module: str,
        class_name: str,
        label: str,
    ) -> None:
        self.module = module
        self.service = service
        self.messages_module = messages_module
        self.package_root = messages_module.split(".")[0]
        self.class_name = class_name
        self.label = label
        self.touched = False
        self.created_class = False
        self.added_methods: list[str] = []
        self.added_imports: list[str] = []

    def complete(self) -> None:
        body = list(self.module.body)
        index = next(
            (
                i
                for i, s in enumerate(body)
                if isinstance(s, cst.ClassDef) and s.name.value == self.class_name
            ),
            None,
        )
        if index is None:
            if self.class_name in bound_names(self.module):
                raise ScaffoldError(
                    f"{self.label}: {self.class_name} is defined, but not as a top-level class; "
                    "choose another name with --class"
                )
            ind = self.module.default_indent
            node = cst.parse_statement(
                _class_text(self.service, self.messages_module, self.class_name, ind).replace(
                    "\n", self.module.default_newline
                ),
                config=self.module.config_for_parsing,
            )
            assert isinstance(node, cst.ClassDef)
            node = node.with_changes(leading_lines=blank_lines(2) if body else [])
            body.append(node)
            index = len(body) - 1
            self.created_class = True
            self.touched = True
        cls = body[index]
        assert isinstance(cls, cst.ClassDef)
        completed = cst.parse_module(self.module.with_changes(body=body).code)
        present = set(ParsedModule(completed).methods(self.class_name))
        missing = [h for h in self.service.handlers if h.method_name not in present]
        if not missing:
            if self.touched:
                self.module = self.module.with_changes(body=body)
            return
        body[index] = self._add_methods(cls, missing)
        self.module = self.module.with_changes(body=body)
        self.touched = True
        names = sorted({h.class_name for h in missing})
        for from_module, wanted in ((_TOOLKIT, ["Delivery"]), (self.messages_module, names)):
            self.module, added = add_import(self.module, from_module, wanted, self.package_root)
            if added is not None:
                self.added_imports.append(added)

    # -- methods ------------------------------------------------------------------

    def _add_methods(self, cls: cst.ClassDef, missing: list[HandlerMethod]) -> cst.ClassDef:
        block = cls.body
        if isinstance(block, cst.SimpleStatementSuite):
            block = cst.IndentedBlock(body=[cst.SimpleStatementLine(body=block.body)])
        assert isinstance(block, cst.IndentedBlock)
        ind = self.module.default_indent
        class_ind = block.indent if block.indent is not None else ind
        statements = list(block.body)
        for handler in missing:
            text = _method_text(handler, self.service, ind, class_ind + ind)
            node = cst.parse_statement(
                text.replace("\n", self.module.default_newline),
                config=self.module.config_for_parsing,
            )
            statements.append(node.with_changes(leading_lines=blank_lines(1) if statements else []))
            self.added_methods.append(handler.method_name)
        return cls.with_changes(body=block.with_changes(body=statements))
