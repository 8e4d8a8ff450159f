"""What each template prints, computed from the model: the Python text of one service.

Templates only loop over these and print them; every literal, docstring,
annotation, declaration, import line and ``__all__`` list is made here.
"""

from __future__ import annotations

import msgspec

from codegen.model import HandlerMethod, PublisherMethod, ServiceModel, StructModel
from codegen.python.fields import Names, declaration, spelling
from codegen.python.imports import (
    handler_imports,
    import_line,
    message_imports,
    publisher_imports,
)
from codegen.python.pytext import (
    class_head,
    comment_lines,
    docstring,
    export_order,
    import_order,
    py_str,
)

__all__ = [
    "FieldView",
    "HandlerView",
    "PublisherView",
    "ServiceView",
    "StructView",
    "handler_doc",
    "service_view",
]

#: Indentation of a method's body in the generated classes.
_METHOD_BODY = "        "
#: Indentation of a class body.
_CLASS_BODY = "    "


class FieldView(msgspec.Struct, frozen=True):
    #: the field's doc as ``#:`` comment lines
    comments: tuple[str, ...]
    declaration: str


class StructView(msgspec.Struct, frozen=True):
    #: the ``class ...:`` line(s)
    head: str
    #: a docstring literal, or "" for none
    docstring: str
    fields: tuple[FieldView, ...]


class EnumView(msgspec.Struct, frozen=True):
    head: str
    docstring: str
    #: (member name, value)
    members: tuple[tuple[str, str], ...]


class HandlerView(msgspec.Struct, frozen=True):
    method_name: str
    routing_key: str
    kind: str
    class_name: str
    docstring: str
    #: the route's ``deduplicate=`` window as a Python literal; "" without one
    deduplicate: str = ""


class PublisherView(msgspec.Struct, frozen=True):
    method_name: str
    #: the message parameter's name: ``command`` or ``event``
    argument: str
    class_name: str
    returns: str
    docstring: str
    #: the bus method it calls, and the arguments it passes
    bus_method: str
    bus_args: tuple[str, ...]


class ServiceView(msgspec.Struct, frozen=True):
    name: str
    source_file: str
    source_hash: str
    class_prefix: str
    enums: tuple[EnumView, ...]
    structs: tuple[StructView, ...]
    handlers: tuple[HandlerView, ...]
    publishers: tuple[PublisherView, ...]
    message_imports: tuple[str, ...]
    publisher_imports: tuple[str, ...]
    handler_imports: tuple[str, ...]
    #: ``__all__`` of messages.py and of the service package
    message_names: tuple[str, ...]
    exported_names: tuple[str, ...]
    #: the service package's docstring and its imports of the modules below it
    package_doc: str
    package_imports: tuple[str, ...]


def handler_doc(handler: HandlerMethod) -> str:
    """The text of a handler method's docstring: what it handles, then the schema's description."""
    text = f"{handler.kind.capitalize()} ``{handler.routing_key}``."
    return _with_description(text, handler.doc)


def _publisher_doc(publisher: PublisherMethod) -> str:
    if publisher.kind == "command":
        text = (
            f"Send command ``{publisher.routing_key}`` to {publisher.target_service}; "
            "returns the message id."
        )
    else:
        text = f"Publish event ``{publisher.routing_key}`` to every subscribed channel."
    text = _with_description(text, publisher.doc)
    if publisher.priority:
        text += f"\n\nPriority {publisher.priority} unless ``priority=`` says otherwise."
    return text


def _with_description(text: str, description: str) -> str:
    return text + "\n\n" + description if description.strip() else text


def _struct(struct: StructModel, names: Names) -> StructView:
    fields = tuple(
        FieldView(tuple(comment_lines(f.doc)), declaration(f, names)) for f in struct.fields
    )
    # msgspec through its private spelling too, where a field is named msgspec
    head = class_head(struct.class_name, f"{names('msgspec')}.Struct, frozen=True, kw_only=True")
    return StructView(head, docstring(struct.doc, _CLASS_BODY), fields)


def _handler(handler: HandlerMethod) -> HandlerView:
    return HandlerView(
        handler.method_name,
        handler.routing_key,
        handler.kind,
        handler.class_name,
        docstring(handler_doc(handler), _METHOD_BODY),
        "" if handler.deduplicate is None else repr(handler.deduplicate),
    )


def _publisher(publisher: PublisherMethod) -> PublisherView:
    command = publisher.kind == "command"
    head = (py_str(publisher.target_service),) if command else ()
    return PublisherView(
        publisher.method_name,
        publisher.kind,
        publisher.class_name,
        "str" if command else "PublishResult",
        docstring(_publisher_doc(publisher), _METHOD_BODY),
        "send_command" if command else "publish_event",
        (
            *head,
            py_str(publisher.routing_key),
            publisher.kind,
            "metadata=metadata",
            "caused_by=caused_by",
            "message_id=message_id",
            "delay=delay",
            "deliver_at=deliver_at",
            "priority=priority",
        ),
    )


def _package(
    service: ServiceModel, message_names: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The service package's docstring, imports and ``__all__``: only the modules it has."""
    prefix = service.class_prefix
    modules: list[tuple[str, tuple[str, ...], str]] = []
    if service.handlers:
        modules.append(("handlers", ("SERVICE", f"{prefix}Handlers", "bind"), "handlers"))
    if message_names:
        modules.append(("messages", message_names, "messages"))
    if service.publishers:
        publishers = (f"{prefix}Publisher", f"{prefix}SyncPublisher")
        modules.append(("publisher", publishers, "publishers"))
    parts = [what for _, _, what in sorted(modules, key=lambda m: m[0] != "messages")]
    summary = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
    doc = f"{service.name}: {summary or 'nothing to generate'}."
    imports = tuple(import_line(f".{module}", import_order(names)) for module, names, _ in modules)
    exported = export_order([name for _, names, _ in modules for name in names])
    return docstring(doc, ""), imports, exported


def service_view(service: ServiceModel) -> ServiceView:
    """Everything the templates of one service print."""
    names = Names(
        {e.class_name: {v: m for m, v in e.members} for e in service.enums},
        spelling(f.name for s in service.structs for f in s.fields),
    )
    message_names = export_order(
        [e.class_name for e in service.enums] + [s.class_name for s in service.structs]
    )
    package_doc, package_imports, exported = _package(service, message_names)
    return ServiceView(
        name=service.name,
        source_file=service.source_file,
        source_hash=service.source_hash,
        class_prefix=service.class_prefix,
        enums=tuple(
            EnumView(
                class_head(e.class_name, "enum.Enum"), docstring(e.doc, _CLASS_BODY), e.members
            )
            for e in service.enums
        ),
        structs=tuple(_struct(s, names) for s in service.structs),
        handlers=tuple(_handler(h) for h in service.handlers),
        publishers=tuple(_publisher(p) for p in service.publishers),
        message_imports=message_imports(service, names.spelled),
        publisher_imports=publisher_imports(service),
        handler_imports=handler_imports(service),
        message_names=message_names,
        exported_names=exported,
        package_doc=package_doc,
        package_imports=package_imports,
    )
