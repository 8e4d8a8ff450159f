"""Reading the users' modules with libcst (never importing them): shared by impl_check and scaffold.

A :class:`ParsedModule` knows a module's top-level classes (with the methods
they define or inherit from classes of the same module), its ``from``
imports, and the line of any node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import libcst as cst
import msgspec
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from codegen.build.names import snake_to_pascal

__all__ = [
    "Method",
    "ParsedModule",
    "default_class_name",
    "dotted",
    "module_name",
    "syntax_error",
    "top_level",
]


def default_class_name(service: str) -> str:
    """``ticket_service`` -> ``TicketService``; ``orders`` -> ``OrdersService``.

    Never the name of the generated Protocol the class implements
    (``TicketServiceHandlers``, ``OrdersHandlers``), which a user's class of
    the same name would shadow in every module that imports both.
    """
    stem = service.removesuffix("_service") or service
    return snake_to_pascal(stem) + "Service"


class Method(msgspec.Struct):
    """A name a class binds: a ``def`` (with its node) or an assignment (node None)."""

    name: str
    owner: str
    node: cst.FunctionDef | None
    line: int


class ParsedModule:
    """One parsed module, with positions."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        self.classes: dict[str, cst.ClassDef] = {}
        #: local name -> (module, imported name) for ``from m import n as local``
        self.imports: dict[str, tuple[str, str]] = {}
        for statement in top_level(module.body):
            if isinstance(statement, cst.ClassDef):
                self.classes[statement.name.value] = statement
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.ImportFrom) and not isinstance(
                        small.names, cst.ImportStar
                    ):
                        origin = module_name(small)
                        for alias in small.names:
                            name = dotted(alias.name)
                            local = (
                                dotted(alias.asname.name)
                                if alias.asname is not None
                                and isinstance(alias.asname.name, cst.Name)
                                else name
                            )
                            self.imports[local] = (origin, name)

    def line(self, node: cst.CSTNode) -> int:
        position: CodeRange = self.positions[node]
        return position.start.line

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

    def methods(self, class_name: str) -> dict[str, Method]:
        """Methods of ``class_name``, including those of base classes defined in this module."""
        found: dict[str, Method] = {}
        self._collect(class_name, found, set())
        return found

    def _collect(self, class_name: str, found: dict[str, Method], seen: set[str]) -> None:
        if class_name in seen or class_name not in self.classes:
            return
        seen.add(class_name)
        node = self.classes[class_name]
        # Bases first, so the class's own definitions win (a rough MRO).
        for arg in reversed(node.bases):
            if isinstance(arg.value, cst.Name):
                self._collect(arg.value.value, found, seen)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        for statement in body:
            if isinstance(statement, cst.FunctionDef):
                name = statement.name.value
                found[name] = Method(name, class_name, statement, self.line(statement.name))
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    targets: Sequence[cst.BaseAssignTargetExpression] = ()
                    if isinstance(small, cst.Assign):
                        targets = [t.target for t in small.targets]
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        targets = [small.target]
                    for target in targets:
                        if isinstance(target, cst.Name):
                            found[target.value] = Method(
                                target.value, class_name, None, self.line(target)
                            )

    def resolve(self, annotation: cst.BaseExpression) -> str | None:
        """The class name an annotation refers to, following ``import ... as`` aliases."""
        if isinstance(annotation, cst.Name):
            origin = self.imports.get(annotation.value)
            return origin[1].rpartition(".")[2] if origin else annotation.value
        if isinstance(annotation, cst.Attribute):
            return annotation.attr.value
        if isinstance(annotation, cst.SimpleString):
            text = annotation.evaluated_value
            if isinstance(text, str):
                try:
                    return self.resolve(cst.parse_expression(text.strip()))
                except cst.ParserSyntaxError:
                    return None
        return None


def syntax_error(exc: cst.ParserSyntaxError) -> str:
    """``"LINE: error: cannot parse the module (column C): reason"`` for a libcst error."""
    line, column, message = exc.editor_line, exc.editor_column, exc.message
    # The native parser puts the true position in the message ("error at 2:0: ...").
    match = re.match(r"parser error: error at (\d+):(\d+): (.*)", message, re.DOTALL)
    if match:
        line, column, message = int(match[1]), int(match[2]) + 1, match[3]
    return f"{line}: error: cannot parse the module (column {column}): {message}"


def top_level(body: Sequence[cst.BaseStatement]) -> Iterator[cst.BaseStatement]:
    """Module-level statements, looking one level into ``if``/``try`` (TYPE_CHECKING imports)."""
    for statement in body:
        yield statement
        if isinstance(statement, cst.If | cst.Try):
            inner = statement.body
            if isinstance(inner, cst.IndentedBlock):
                yield from inner.body


def dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{dotted(node.value)}.{node.attr.value}"
    return ""


def module_name(node: cst.ImportFrom) -> str:
    dots = "." * len(node.relative)
    return dots + (dotted(node.module) if node.module is not None else "")
