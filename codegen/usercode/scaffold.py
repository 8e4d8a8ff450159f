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

import sys

import libcst as cst
import msgspec

from codegen.model import HandlerMethod, ServiceModel, SystemModel
from codegen.python import pytext
from codegen.python.imports import LINE_LENGTH, import_line
from codegen.python.views import handler_doc
from codegen.usercode.impl_check import _ParsedModule, _top_level, default_class_name, syntax_error

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
    name = class_name or default_class_name(service.name)
    if not name.isidentifier():
        raise ScaffoldError(f"class name {name!r} is not a Python identifier")
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
    parsed = _ParsedModule(text, label)
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


def _section(module: str, package_root: str) -> int:
    """isort sections: future, stdlib, third party (toolkit), first party (the package), local."""
    if module.startswith("."):
        return 4
    root = module.split(".")[0]
    if root == "__future__":
        return 0
    if root == package_root:
        return 3
    if root in sys.stdlib_module_names:
        return 1
    return 2


def _import_modules(statement: cst.BaseStatement) -> list[str] | None:
    """The modules a top-level import line imports from, None when it is not an import line."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return None
    found: list[str] = []
    for small in statement.body:
        if isinstance(small, cst.ImportFrom):
            found.append(
                "." * len(small.relative) + (_dotted(small.module) if small.module else "")
            )
        elif isinstance(small, cst.Import):
            found.extend(_dotted(a.name) for a in small.names)
        else:
            return None
    return found


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _target_name(node: cst.BaseExpression) -> str:
    return node.value if isinstance(node, cst.Name) else ""


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _blank(count: int) -> list[cst.EmptyLine]:
    return [cst.EmptyLine(indent=False) for _ in range(count)]


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
            if self.class_name in self._bound_names():
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
            node = node.with_changes(leading_lines=_blank(2) if body else [])
            body.append(node)
            index = len(body) - 1
            self.created_class = True
            self.touched = True
        cls = body[index]
        assert isinstance(cls, cst.ClassDef)
        present = set(
            _ParsedModule(self.module.with_changes(body=body).code, "").methods(self.class_name)
        )
        missing = [h for h in self.service.handlers if h.method_name not in present]
        if not missing:
            if self.touched:
                self.module = self.module.with_changes(body=body)
            return
        body[index] = self._add_methods(cls, missing)
        self.module = self.module.with_changes(body=body)
        self.touched = True
        names = sorted({h.class_name for h in missing})
        self._ensure_import(_TOOLKIT, ["Delivery"])
        self._ensure_import(self.messages_module, names)

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
            statements.append(node.with_changes(leading_lines=_blank(1) if statements else []))
            self.added_methods.append(handler.method_name)
        return cls.with_changes(body=block.with_changes(body=statements))

    # -- imports ------------------------------------------------------------------

    def _bound_names(self) -> set[str]:
        names: set[str] = set()
        for statement in _top_level(self.module.body):
            if isinstance(statement, cst.ClassDef | cst.FunctionDef):
                names.add(statement.name.value)
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if alias.asname is not None:
                            names.add(_target_name(alias.asname.name))
                        else:
                            names.add(_dotted(alias.name).split(".")[0])
                elif isinstance(small, cst.ImportFrom) and not isinstance(
                    small.names, cst.ImportStar
                ):
                    for alias in small.names:
                        if alias.asname is not None:
                            names.add(_target_name(alias.asname.name))
                        else:
                            names.add(_dotted(alias.name))
                elif isinstance(small, cst.Assign):
                    names.update(
                        t.target.value for t in small.targets if isinstance(t.target, cst.Name)
                    )
                elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    names.add(small.target.value)
        return names

    def _ensure_import(self, module_name: str, wanted: list[str]) -> None:
        bound = self._bound_names()
        names = [n for n in wanted if n not in bound]
        if not names:
            return
        body: list[cst.BaseStatement] = list(self.module.body)
        for i, statement in enumerate(body):
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for j, small in enumerate(statement.body):
                if not (
                    isinstance(small, cst.ImportFrom)
                    and not small.relative
                    and small.module is not None
                    and _dotted(small.module) == module_name
                ):
                    continue
                if isinstance(small.names, cst.ImportStar):
                    return
                merged = self._merge(small, names)
                smalls = list(statement.body)
                smalls[j] = merged
                body[i] = statement.with_changes(body=smalls)
                self.module = self.module.with_changes(body=body)
                self.added_imports.append(f"from {module_name} import {', '.join(names)}")
                return
        self._insert_import(body, module_name, names)

    def _merge(self, node: cst.ImportFrom, names: list[str]) -> cst.ImportFrom:
        assert not isinstance(node.names, cst.ImportStar)
        aliases = list(node.names)
        lpar = node.lpar
        multiline = lpar is not None and isinstance(
            lpar.whitespace_after, cst.ParenthesizedWhitespace
        )
        separator: cst.Comma
        if multiline:
            assert lpar is not None
            opening = lpar.whitespace_after
            assert isinstance(opening, cst.ParenthesizedWhitespace)
            separator = cst.Comma(
                whitespace_after=cst.ParenthesizedWhitespace(
                    first_line=cst.TrailingWhitespace(),
                    indent=opening.indent,
                    last_line=opening.last_line,
                )
            )
        else:
            separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        for name in names:
            position = next(
                (i for i, a in enumerate(aliases) if _dotted(a.name) > name), len(aliases)
            )
            alias = cst.ImportAlias(name=cst.Name(name))
            if position < len(aliases):
                alias = alias.with_changes(comma=separator)
            else:
                alias = alias.with_changes(comma=aliases[-1].comma)
                aliases[-1] = aliases[-1].with_changes(comma=separator)
            aliases.insert(position, alias)
        merged = node.with_changes(names=aliases)
        if not multiline and node.lpar is None:
            line = cst.Module(body=[]).code_for_node(merged)
            if len(line) > LINE_LENGTH:
                text = import_line(
                    _dotted(node.module) if node.module else "",
                    [_dotted(a.name) for a in aliases],
                    self.module.default_indent,
                )
                replacement = cst.parse_statement(
                    text.replace("\n", self.module.default_newline),
                    config=self.module.config_for_parsing,
                )
                assert isinstance(replacement, cst.SimpleStatementLine)
                new = replacement.body[0]
                assert isinstance(new, cst.ImportFrom)
                merged = new
        return merged

    def _insert_import(
        self, body: list[cst.BaseStatement], module_name: str, names: list[str]
    ) -> None:
        text = import_line(module_name, names, self.module.default_indent)
        node = cst.parse_statement(
            text.replace("\n", self.module.default_newline),
            config=self.module.config_for_parsing,
        )
        section = _section(module_name, self.package_root)
        first_code = next(
            (i for i, s in enumerate(body) if not isinstance(s, cst.SimpleStatementLine)),
            len(body),
        )
        imports = [
            (i, max(_section(m, self.package_root) for m in mods) if mods else 0)
            for i, s in enumerate(body[:first_code])
            if (mods := _import_modules(s)) is not None
        ]
        before = [(i, s) for i, s in imports if s <= section]
        if before:
            at, previous = before[-1]
            index = at + 1
            node = node.with_changes(leading_lines=_blank(1) if previous != section else [])
        elif imports:
            index, following = imports[0]
            displaced = body[index]
            assert isinstance(displaced, cst.SimpleStatementLine)
            node = node.with_changes(leading_lines=displaced.leading_lines)
            body[index] = displaced.with_changes(
                leading_lines=_blank(1) if following != section else []
            )
        else:
            index = 1 if body and _is_docstring(body[0]) else 0
            node = node.with_changes(leading_lines=_blank(1) if index else [])
        if index < len(body):
            # Keep the statement that now follows the new import apart from it.
            after = body[index]
            mods = _import_modules(after)
            if mods is not None:
                others = {_section(m, self.package_root) for m in mods}
                want = 0 if others == {section} else 1
            else:
                want = 2 if isinstance(after, cst.ClassDef | cst.FunctionDef) else 1
            assert isinstance(after, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            lines = list(after.leading_lines)
            have = 0
            while have < len(lines) and lines[have].comment is None:
                have += 1
            if have < want:
                body[index] = after.with_changes(leading_lines=_blank(want - have) + lines)
        body.insert(index, node)
        self.module = self.module.with_changes(body=body)
        self.added_imports.append(f"from {module_name} import {', '.join(names)}")
