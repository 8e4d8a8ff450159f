"""Adding ``from module import names`` to a user's module the way isort and ruff would.

A name already bound at module level is not imported again; an existing
``from module import ...`` line gets the new names merged in, in order (and
is wrapped when it grows too long); otherwise a new line goes into its
section (future, standard library, third party, the generated package,
relative), with blank lines between sections. Nothing else of the module
changes.
"""

from __future__ import annotations

import sys

import libcst as cst

from codegen.python.imports import LINE_LENGTH, import_line
from codegen.usercode._source import dotted, module_name, top_level

__all__ = ["add_import", "blank_lines", "bound_names"]


def blank_lines(count: int) -> list[cst.EmptyLine]:
    return [cst.EmptyLine(indent=False) for _ in range(count)]


def _target_name(node: cst.BaseExpression) -> str:
    return node.value if isinstance(node, cst.Name) else ""


def bound_names(module: cst.Module) -> set[str]:
    """Names the module binds at top level: classes, functions, imports, assignments."""
    names: set[str] = set()
    for statement in top_level(module.body):
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
                        names.add(dotted(alias.name).split(".")[0])
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if alias.asname is not None:
                        names.add(_target_name(alias.asname.name))
                    else:
                        names.add(dotted(alias.name))
            elif isinstance(small, cst.Assign):
                names.update(
                    t.target.value for t in small.targets if isinstance(t.target, cst.Name)
                )
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                names.add(small.target.value)
    return names


def add_import(
    module: cst.Module, from_module: str, wanted: list[str], package_root: str
) -> tuple[cst.Module, str | None]:
    """The module importing ``wanted`` from ``from_module``, and the import it added (None: none).

    ``package_root`` is the generated package's top-level name (its section).
    """
    bound = bound_names(module)
    names = [n for n in wanted if n not in bound]
    if not names:
        return module, None
    added = f"from {from_module} import {', '.join(names)}"
    body: list[cst.BaseStatement] = list(module.body)
    for i, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for j, small in enumerate(statement.body):
            if not (
                isinstance(small, cst.ImportFrom)
                and not small.relative
                and small.module is not None
                and dotted(small.module) == from_module
            ):
                continue
            if isinstance(small.names, cst.ImportStar):
                return module, None
            smalls = list(statement.body)
            smalls[j] = _merge(module, small, names)
            body[i] = statement.with_changes(body=smalls)
            return module.with_changes(body=body), added
    return _insert(module, body, from_module, names, package_root), added


def _merge(module: cst.Module, node: cst.ImportFrom, names: list[str]) -> cst.ImportFrom:
    assert not isinstance(node.names, cst.ImportStar)
    aliases = list(node.names)
    lpar = node.lpar
    multiline = lpar is not None and isinstance(lpar.whitespace_after, cst.ParenthesizedWhitespace)
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
        position = next((i for i, a in enumerate(aliases) if dotted(a.name) > name), len(aliases))
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
                dotted(node.module) if node.module else "",
                [dotted(a.name) for a in aliases],
                module.default_indent,
            )
            replacement = cst.parse_statement(
                text.replace("\n", module.default_newline),
                config=module.config_for_parsing,
            )
            assert isinstance(replacement, cst.SimpleStatementLine)
            new = replacement.body[0]
            assert isinstance(new, cst.ImportFrom)
            merged = new
    return merged


def _section(name: str, package_root: str) -> int:
    """isort sections: future, stdlib, third party (toolkit), first party (the package), local."""
    if name.startswith("."):
        return 4
    root = name.split(".")[0]
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
            found.append(module_name(small))
        elif isinstance(small, cst.Import):
            found.extend(dotted(a.name) for a in small.names)
        else:
            return None
    return found


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _insert(
    module: cst.Module,
    body: list[cst.BaseStatement],
    from_module: str,
    names: list[str],
    package_root: str,
) -> cst.Module:
    text = import_line(from_module, names, module.default_indent)
    node = cst.parse_statement(
        text.replace("\n", module.default_newline),
        config=module.config_for_parsing,
    )
    section = _section(from_module, package_root)
    first_code = next(
        (i for i, s in enumerate(body) if not isinstance(s, cst.SimpleStatementLine)),
        len(body),
    )
    imports = [
        (i, max(_section(m, package_root) for m in mods) if mods else 0)
        for i, s in enumerate(body[:first_code])
        if (mods := _import_modules(s)) is not None
    ]
    before = [(i, s) for i, s in imports if s <= section]
    if before:
        at, previous = before[-1]
        index = at + 1
        node = node.with_changes(leading_lines=blank_lines(1) if previous != section else [])
    elif imports:
        index, following = imports[0]
        displaced = body[index]
        assert isinstance(displaced, cst.SimpleStatementLine)
        node = node.with_changes(leading_lines=displaced.leading_lines)
        body[index] = displaced.with_changes(
            leading_lines=blank_lines(1) if following != section else []
        )
    else:
        index = 1 if body and _is_docstring(body[0]) else 0
        node = node.with_changes(leading_lines=blank_lines(1) if index else [])
    if index < len(body):
        # Keep the statement that now follows the new import apart from it.
        after = body[index]
        mods = _import_modules(after)
        if mods is not None:
            others = {_section(m, package_root) for m in mods}
            want = 0 if others == {section} else 1
        else:
            want = 2 if isinstance(after, cst.ClassDef | cst.FunctionDef) else 1
        assert isinstance(after, cst.SimpleStatementLine | cst.BaseCompoundStatement)
        lines = list(after.leading_lines)
        have = 0
        while have < len(lines) and lines[have].comment is None:
            have += 1
        if have < want:
            body[index] = after.with_changes(leading_lines=blank_lines(want - have) + lines)
    body.insert(index, node)
    return module.with_changes(body=body)
